"""psycopg 3 scenario of tenantproxy's client compatibility matrix.

psycopg 3 binds parameters on the server (extended protocol); prepare=True
makes it use named prepared statements; a pipeline sends several
statements before one Sync; COPY FROM STDIN goes through cursor.copy().
"""
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import psycopg

from common import ENV, OTHER_ID, TAG, TENANT, check

print(f"version: psycopg {psycopg.__version__}, libpq {psycopg.pq.version()}", flush=True)
conn = psycopg.connect(ENV["DATABASE_URL"], autocommit=True)

cols = [r[0] for r in conn.execute(
    "SELECT column_name FROM information_schema.columns WHERE table_schema = 'public' AND table_name = %s "
    "ORDER BY ordinal_position", ("accounts",))]
check(cols == ["id", "tenant_id", "name", "created_at"], "introspect", cols)
info = psycopg.types.TypeInfo.fetch(conn, "text")
check(info is not None and info.oid == 25, "type introspection", info and info.oid)

aid, tenant = conn.execute("INSERT INTO accounts (name) VALUES (%s) RETURNING id, tenant_id", (TAG,)).fetchone()
check(tenant == TENANT, "insert fills the tenant", tenant)
nid = conn.execute("INSERT INTO notes (account_id, body) VALUES (%s, %s) RETURNING id", (aid, "hello")).fetchone()[0]

rows = conn.execute("SELECT a.name, n.body FROM accounts a JOIN notes n ON n.account_id = a.id WHERE a.id = %s",
                    (aid,)).fetchall()
check(rows == [(TAG, "hello")], "join reads back", rows)

cur = conn.execute("UPDATE notes SET stars = stars + 1 WHERE id = %s", (nid,))
check(cur.rowcount == 1, "update", cur.rowcount)

try:
    with conn.transaction():
        conn.execute("INSERT INTO accounts (name) VALUES (%s)", (TAG + "-rollback",))
        raise RuntimeError("roll back")
except RuntimeError:
    pass
n = conn.execute("SELECT count(*) FROM accounts WHERE name = %s", (TAG + "-rollback",)).fetchone()[0]
check(n == 0, "rollback", n)

for i in range(3):
    rows = conn.execute("SELECT name FROM accounts WHERE id = %s", (aid,), prepare=True).fetchall()
    check(rows == [(TAG,)], f"prepared query, run {i + 1}", rows)

with conn.pipeline():
    c1 = conn.execute("SELECT count(*) FROM notes WHERE account_id = %s", (aid,))
    c2 = conn.execute("SELECT name FROM accounts WHERE id = %s", (aid,))
check(c1.fetchone()[0] == 1 and c2.fetchone()[0] == TAG, "pipeline")

# A prepared statement inside a transaction that is rolled back: psycopg
# sends ROLLBACK, then DEALLOCATE ALL for the statements it prepared.
with conn.transaction():
    conn.execute("SELECT name FROM accounts WHERE id = %s", (aid,), prepare=True)
    raise psycopg.Rollback()
rows = conn.execute("SELECT name FROM accounts WHERE id = %s", (aid,), prepare=True).fetchall()
check(rows == [(TAG,)], "prepared statements after a rollback", rows)

# The default prepare threshold (5) over more distinct statements than the
# statement cache holds (100): evicting one sends DEALLOCATE <name>.
check(conn.prepare_threshold == 5 and conn.prepared_max == 100, "default prepare settings",
      [conn.prepare_threshold, conn.prepared_max])
for i in range(110):
    for _ in range(6):
        n = conn.execute(f"SELECT count(*) FROM accounts WHERE id = %s AND {i} = {i}", (aid,)).fetchone()[0]
        if n != 1:
            check(False, "statement cache eviction", [i, n])
check(True, "statement cache eviction (110 prepared statements, 10 deallocated)")

# Pipeline mode: statements prepared and evicted inside a pipeline.
with conn.pipeline():
    curs = [conn.execute(f"SELECT {i} + %s", (i,)) for i in range(8) for _ in range(6)]
check([c.fetchone()[0] for c in curs] == [2 * i for i in range(8) for _ in range(6)], "pipeline with prepared statements")

# A rollback inside a pipeline, after prepared statements.
try:
    with conn.pipeline(), conn.transaction():
        for _ in range(6):
            conn.execute("SELECT count(*) FROM notes WHERE account_id = %s", (aid,))
        raise psycopg.Rollback()
except psycopg.Rollback:
    pass
check(conn.execute("SELECT count(*) FROM notes WHERE account_id = %s", (aid,)).fetchone()[0] == 1,
      "pipeline rollback after prepared statements")

with conn.cursor() as cur:
    with cur.copy("COPY notes (account_id, body) FROM STDIN") as copy:
        copy.write_row((aid, "copied 1"))
        copy.write_row((aid, "copied 2"))
    check(cur.rowcount == 2, "copy from stdin", cur.rowcount)
rows = conn.execute("SELECT tenant_id, body FROM notes WHERE account_id = %s AND body LIKE 'copied%%' ORDER BY body",
                    (aid,)).fetchall()
check(rows == [(TENANT, "copied 1"), (TENANT, "copied 2")], "copied rows are the tenant's", rows)
conn.execute("DELETE FROM notes WHERE account_id = %s AND body LIKE 'copied%%'", (aid,))

check(conn.execute("SELECT * FROM accounts WHERE id = %s", (OTHER_ID,)).fetchall() == [],
      "other tenant's row is not seen")
cur = conn.execute("UPDATE accounts SET name = 'stolen' WHERE id = %s", (OTHER_ID,))
check(cur.rowcount == 0, "other tenant's row is not updated", cur.rowcount)
cur = conn.execute("DELETE FROM notes WHERE account_id = %s", (OTHER_ID,))
check(cur.rowcount == 0, "other tenant's notes are not deleted", cur.rowcount)
rows = conn.execute("SELECT DISTINCT tenant_id FROM accounts").fetchall()
check(rows == [(TENANT,)], "only its own tenant", rows)

cur = conn.execute("DELETE FROM notes WHERE id = %s", (nid,))
check(cur.rowcount == 1, "delete", cur.rowcount)

try:
    conn.execute("SELECT * FROM secrets")
    check(False, "uncatalogued table refused", "no error")
except psycopg.Error as e:
    check(e.sqlstate == "42501" and str(e).startswith("tenantproxy:"), "uncatalogued table refused",
          [e.sqlstate, str(e)])
check(conn.execute("SELECT 1").fetchone() == (1,), "session usable after refusal")
conn.close()

# psycopg_pool: connections are reset and reused; each checkout runs
# prepared statements again.
try:
    import psycopg_pool
except ImportError:
    psycopg_pool = None
if psycopg_pool is not None:
    with psycopg_pool.ConnectionPool(ENV["DATABASE_URL"], min_size=1, max_size=2, open=True) as pool:
        for i in range(4):
            with pool.connection() as pc:
                for _ in range(6):
                    rows = pc.execute("SELECT name FROM accounts WHERE id = %s", (aid,)).fetchall()
                check(rows == [(TAG,)], f"psycopg_pool checkout {i + 1}", rows)
        with pool.connection() as pc:
            with pc.transaction():
                pc.execute("SELECT name FROM accounts WHERE id = %s", (aid,), prepare=True)
                raise psycopg.Rollback()
        with pool.connection() as pc:
            rows = pc.execute("SELECT name FROM accounts WHERE id = %s", (aid,), prepare=True).fetchall()
            check(rows == [(TAG,)], "psycopg_pool after a rolled-back checkout", rows)
    print(f"version: psycopg_pool {psycopg_pool.__version__}", flush=True)
