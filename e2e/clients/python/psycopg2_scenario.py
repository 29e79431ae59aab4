"""psycopg2 scenario of tenantproxy's client compatibility matrix.

psycopg2 binds parameters on the client and sends the simple protocol.
"""
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import psycopg2
import psycopg2.errors

from common import ENV, OTHER_ID, TAG, TENANT, check

print(f"version: psycopg2 {psycopg2.__version__}, libpq {psycopg2.__libpq_version__}", flush=True)
conn = psycopg2.connect(ENV["DATABASE_URL"])
cur = conn.cursor()

cur.execute("SELECT column_name FROM information_schema.columns WHERE table_schema = 'public' AND table_name = %s "
            "ORDER BY ordinal_position", ("accounts",))
cols = [r[0] for r in cur.fetchall()]
check(cols == ["id", "tenant_id", "name", "created_at"], "introspect", cols)

cur.execute("INSERT INTO accounts (name) VALUES (%s) RETURNING id, tenant_id", (TAG,))
aid, tenant = cur.fetchone()
check(tenant == TENANT, "insert fills the tenant", tenant)
cur.execute("INSERT INTO notes (account_id, body) VALUES (%s, %s) RETURNING id", (aid, "hello"))
nid = cur.fetchone()[0]
conn.commit()

cur.execute("SELECT a.name, n.body FROM accounts a JOIN notes n ON n.account_id = a.id WHERE a.id = %s", (aid,))
rows = cur.fetchall()
check(rows == [(TAG, "hello")], "join reads back", rows)

cur.execute("UPDATE notes SET stars = stars + 1 WHERE id = %s", (nid,))
check(cur.rowcount == 1, "update", cur.rowcount)
conn.commit()

cur.execute("INSERT INTO accounts (name) VALUES (%s)", (TAG + "-rollback",))
conn.rollback()
cur.execute("SELECT count(*) FROM accounts WHERE name = %s", (TAG + "-rollback",))
check(cur.fetchone()[0] == 0, "rollback")

# SQL-level PREPARE outlives a transaction: a proxy in transaction pooling
# mode refuses it, so it runs in session mode only.
if os.environ.get("TP_POOL_MODE") == "session":
    cur.execute("PREPARE account_by_id(bigint) AS SELECT name FROM accounts WHERE id = $1")
    for i in range(3):
        cur.execute("EXECUTE account_by_id(%s)", (aid,))
        rows = cur.fetchall()
        check(rows == [(TAG,)], f"prepared query, run {i + 1}", rows)
    cur.execute("DEALLOCATE account_by_id")
else:
    print("skip prepared query: SQL PREPARE needs --pool-mode session")

cur.execute("SELECT * FROM accounts WHERE id = %s", (OTHER_ID,))
check(cur.fetchall() == [], "other tenant's row is not seen")
cur.execute("UPDATE accounts SET name = 'stolen' WHERE id = %s", (OTHER_ID,))
check(cur.rowcount == 0, "other tenant's row is not updated", cur.rowcount)
cur.execute("DELETE FROM notes WHERE account_id = %s", (OTHER_ID,))
check(cur.rowcount == 0, "other tenant's notes are not deleted", cur.rowcount)
cur.execute("SELECT DISTINCT tenant_id FROM accounts")
rows = cur.fetchall()
check(rows == [(TENANT,)], "only its own tenant", rows)

cur.execute("DELETE FROM notes WHERE id = %s", (nid,))
check(cur.rowcount == 1, "delete", cur.rowcount)
conn.commit()

try:
    cur.execute("SELECT * FROM secrets")
    check(False, "uncatalogued table refused", "no error")
except psycopg2.Error as e:
    check(e.pgcode == "42501" and e.pgerror.startswith("ERROR:  tenantproxy:"), "uncatalogued table refused",
          [e.pgcode, e.pgerror])
conn.rollback()
cur.execute("SELECT 1")
check(cur.fetchone() == (1,), "session usable after refusal")
conn.close()
