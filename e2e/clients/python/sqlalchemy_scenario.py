"""SQLAlchemy 1.4 ORM scenario of tenantproxy's client compatibility matrix
(psycopg2 underneath). The models leave the tenant column out: the proxy
fills it on insert and confines every read and write."""
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import sqlalchemy as sa
from sqlalchemy import orm

from common import ENV, OTHER_ID, TAG, TENANT, check

print(f"version: SQLAlchemy {sa.__version__}, psycopg2 {__import__('psycopg2').__version__}", flush=True)
Base = orm.declarative_base()


class Account(Base):
    __tablename__ = "accounts"
    id = sa.Column(sa.BigInteger, primary_key=True)
    name = sa.Column(sa.Text, nullable=False)
    notes = orm.relationship("Note", back_populates="account")


class Note(Base):
    __tablename__ = "notes"
    id = sa.Column(sa.BigInteger, primary_key=True)
    account_id = sa.Column(sa.BigInteger, sa.ForeignKey("accounts.id"), nullable=False)
    body = sa.Column(sa.Text, nullable=False)
    stars = sa.Column(sa.Integer, nullable=False, server_default="0")
    account = orm.relationship("Account", back_populates="notes")


engine = sa.create_engine(ENV["DATABASE_URL"].replace("postgres://", "postgresql+psycopg2://", 1), future=True)
insp = sa.inspect(engine)
check(insp.has_table("accounts"), "introspect has_table")
cols = [c["name"] for c in insp.get_columns("accounts")]
check(cols == ["id", "tenant_id", "name", "created_at"], "introspect columns", cols)
fks = insp.get_foreign_keys("notes")
check([fk["referred_table"] for fk in fks] == ["accounts"], "introspect foreign keys", fks)

with orm.Session(engine) as s:
    acc = Account(name=TAG)
    acc.notes.append(Note(body="hello"))
    s.add(acc)
    s.commit()
    aid, nid = acc.id, acc.notes[0].id
    check(aid and nid, "create")

with orm.Session(engine) as s:
    rows = s.execute(sa.select(Account.name, Note.body).join(Note.account).where(Account.id == aid)).all()
    check([tuple(r) for r in rows] == [(TAG, "hello")], "join reads back", rows)
    acc = s.get(Account, aid)
    check([n.body for n in acc.notes] == ["hello"], "relationship load")
    tenant = s.execute(sa.text("SELECT tenant_id FROM accounts WHERE id = :id"), {"id": aid}).scalar_one()
    check(tenant == TENANT, "insert fills the tenant", tenant)

    res = s.execute(sa.update(Note).where(Note.id == nid).values(stars=Note.stars + 1))
    check(res.rowcount == 1, "update", res.rowcount)
    acc.notes[0].body = "hello again"  # the unit of work's UPDATE on flush
    s.commit()
    check(s.get(Note, nid).body == "hello again", "unit of work update")

with orm.Session(engine) as s:
    s.add(Account(name=TAG + "-rollback"))
    s.flush()
    s.rollback()
    n = s.execute(sa.select(sa.func.count()).select_from(Account).where(Account.name == TAG + "-rollback")).scalar_one()
    check(n == 0, "rollback", n)

    for i in range(3):
        got = s.execute(sa.text("SELECT name FROM accounts WHERE id = :id"), {"id": aid}).scalars().all()
        check(got == [TAG], f"parameterised query, run {i + 1}", got)

    check(s.get(Account, OTHER_ID) is None, "other tenant's row is not seen")
    res = s.execute(sa.update(Account).where(Account.id == OTHER_ID).values(name="stolen"))
    check(res.rowcount == 0, "other tenant's row is not updated", res.rowcount)
    res = s.execute(sa.delete(Note).where(Note.account_id == OTHER_ID))
    check(res.rowcount == 0, "other tenant's notes are not deleted", res.rowcount)
    tenants = s.execute(sa.text("SELECT DISTINCT tenant_id FROM accounts")).scalars().all()
    check(tenants == [TENANT], "only its own tenant", tenants)
    s.delete(s.get(Note, nid))
    s.commit()
    check(s.get(Note, nid) is None, "delete")

    try:
        s.execute(sa.text("SELECT * FROM secrets"))
        check(False, "uncatalogued table refused", "no error")
    except sa.exc.DBAPIError as e:
        check(e.orig.pgcode == "42501" and "tenantproxy:" in str(e.orig), "uncatalogued table refused", str(e.orig))
    s.rollback()
    check(s.execute(sa.text("SELECT 1")).scalar_one() == 1, "session usable after refusal")
