"""asyncpg scenario of tenantproxy's client compatibility matrix.

asyncpg prepares every statement under a name of its own and keeps them in
a statement cache (100 by default), introspects types with pg_catalog
queries, and resets a connection it gives back to its pool with
"SELECT pg_advisory_unlock_all(); CLOSE ALL; DO ... UNLISTEN ...; RESET ALL".
Everything here uses asyncpg's defaults.
"""
import asyncio
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import asyncpg

from common import ENV, OTHER_ID, TAG, TENANT, check


async def main():
    print(f"version: asyncpg {asyncpg.__version__}", flush=True)
    conn = await asyncpg.connect(ENV["DATABASE_URL"])

    cols = [r["column_name"] for r in await conn.fetch(
        "SELECT column_name FROM information_schema.columns WHERE table_schema = 'public' AND table_name = $1 "
        "ORDER BY ordinal_position", "accounts")]
    check(cols == ["id", "tenant_id", "name", "created_at"], "introspect", cols)

    row = await conn.fetchrow("INSERT INTO accounts (name) VALUES ($1) RETURNING id, tenant_id", TAG)
    aid = row["id"]
    check(row["tenant_id"] == TENANT, "insert fills the tenant", row["tenant_id"])
    nid = await conn.fetchval("INSERT INTO notes (account_id, body) VALUES ($1, $2) RETURNING id", aid, "hello")

    rows = await conn.fetch("SELECT a.name, n.body, a.created_at FROM accounts a JOIN notes n ON n.account_id = a.id WHERE a.id = $1", aid)
    check([(r["name"], r["body"]) for r in rows] == [(TAG, "hello")], "join reads back (timestamptz decoded)", rows)

    status = await conn.execute("UPDATE notes SET stars = stars + 1 WHERE id = $1", nid)
    check(status == "UPDATE 1", "update", status)

    try:
        async with conn.transaction():
            await conn.execute("INSERT INTO accounts (name) VALUES ($1)", TAG + "-rollback")
            await conn.fetchval("SELECT count(*) FROM accounts WHERE id = $1", aid)
            raise RuntimeError("roll back")
    except RuntimeError:
        pass
    n = await conn.fetchval("SELECT count(*) FROM accounts WHERE name = $1", TAG + "-rollback")
    check(n == 0, "rollback after prepared statements", n)

    for i in range(3):
        name = await conn.fetchval("SELECT name FROM accounts WHERE id = $1", aid)
        check(name == TAG, f"cached statement, run {i + 1}", name)

    # More distinct statements than the statement cache holds: asyncpg
    # closes the evicted ones.
    for i in range(120):
        v = await conn.fetchval(f"SELECT count(*) FROM accounts WHERE id = $1 AND {i} = {i}", aid)
        if v != 1:
            check(False, "statement cache eviction", [i, v])
    check(True, "statement cache eviction (120 statements, cache of 100)")

    await conn.executemany("INSERT INTO notes (account_id, body) VALUES ($1, $2)",
                           [(aid, "many 1"), (aid, "many 2"), (aid, "many 3")])
    n = await conn.fetchval("SELECT count(*) FROM notes WHERE account_id = $1 AND body LIKE 'many%'", aid)
    check(n == 3, "executemany", n)

    res = await conn.copy_records_to_table("notes", records=[(aid, "copied 1"), (aid, "copied 2")],
                                           columns=["account_id", "body"])
    check(res == "COPY 2", "copy_records_to_table", res)
    rows = await conn.fetch("SELECT tenant_id, body FROM notes WHERE account_id = $1 AND body LIKE 'copied%' ORDER BY body", aid)
    check([(r["tenant_id"], r["body"]) for r in rows] == [(TENANT, "copied 1"), (TENANT, "copied 2")],
          "copied rows are the tenant's", rows)
    await conn.execute("DELETE FROM notes WHERE account_id = $1 AND (body LIKE 'copied%' OR body LIKE 'many%')", aid)

    check(await conn.fetch("SELECT * FROM accounts WHERE id = $1", OTHER_ID) == [], "other tenant's row is not seen")
    status = await conn.execute("UPDATE accounts SET name = 'stolen' WHERE id = $1", OTHER_ID)
    check(status == "UPDATE 0", "other tenant's row is not updated", status)
    status = await conn.execute("DELETE FROM notes WHERE account_id = $1", OTHER_ID)
    check(status == "DELETE 0", "other tenant's notes are not deleted", status)
    rows = await conn.fetch("SELECT DISTINCT tenant_id FROM accounts")
    check([r["tenant_id"] for r in rows] == [TENANT], "only its own tenant", rows)

    status = await conn.execute("DELETE FROM notes WHERE id = $1", nid)
    check(status == "DELETE 1", "delete", status)

    try:
        await conn.fetch("SELECT * FROM secrets")
        check(False, "uncatalogued table refused", "no error")
    except asyncpg.PostgresError as e:
        check(e.sqlstate == "42501" and str(e).startswith("tenantproxy:"), "uncatalogued table refused",
              [e.sqlstate, str(e)])
    check(await conn.fetchval("SELECT 1") == 1, "session usable after refusal")
    await conn.close()

    # The pool resets a connection on release (its reset query) and hands
    # it out again; statements are prepared again as needed.
    pool = await asyncpg.create_pool(ENV["DATABASE_URL"], min_size=1, max_size=2)
    for i in range(4):
        async with pool.acquire() as pc:
            name = await pc.fetchval("SELECT name FROM accounts WHERE id = $1", aid)
            check(name == TAG, f"pool acquire/release {i + 1}", name)
    async with pool.acquire() as pc:
        try:
            async with pc.transaction():
                await pc.fetchval("SELECT name FROM accounts WHERE id = $1", aid)
                raise RuntimeError("roll back")
        except RuntimeError:
            pass
    async with pool.acquire() as pc:
        check(await pc.fetchval("SELECT name FROM accounts WHERE id = $1", aid) == TAG, "pool after a rollback")
    await pool.close()


asyncio.run(main())
