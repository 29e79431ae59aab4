// postgres.js (npm "postgres") scenario of tenantproxy's client
// compatibility matrix (see e2e/clients_test.go): its defaults (named
// prepared statements, array types fetched on connect, pipelined queries
// on one connection), sql.begin with a rollback, and prepare: false.
'use strict';
const postgres = require('postgres');
const { env, check, version, run } = require('./common');

async function main() {
  console.log(`version: postgres.js ${version('postgres')}, Node.js ${process.version}`);
  const sql = postgres(env.DATABASE_URL, { max: 2, onnotice: () => {} });
  const tag = env.TP_TAG;
  const other = Number(env.TP_OTHER_ID);
  const tenant = Number(env.TP_TENANT);

  const cols = await sql`SELECT column_name FROM information_schema.columns
    WHERE table_schema = 'public' AND table_name = ${'accounts'} ORDER BY ordinal_position`;
  check(cols.map(r => r.column_name).join(',') === 'id,tenant_id,name,created_at', 'introspect', cols);

  const [a] = await sql`INSERT INTO accounts (name) VALUES (${tag}) RETURNING id, tenant_id`;
  check(a.tenant_id === tenant, 'insert fills the tenant', a);
  const aid = a.id;
  const [n] = await sql`INSERT INTO notes (account_id, body) VALUES (${aid}, ${'hello'}) RETURNING id`;
  const nid = n.id;

  const j = await sql`SELECT a.name, n.body, a.created_at FROM accounts a JOIN notes n ON n.account_id = a.id WHERE a.id = ${aid}`;
  check(j.length === 1 && j[0].name === tag && j[0].body === 'hello' && j[0].created_at instanceof Date, 'join reads back', j);

  const u = await sql`UPDATE notes SET stars = stars + 1 WHERE id = ${nid}`;
  check(u.count === 1, 'update', u.count);

  try {
    await sql.begin(async tx => {
      await tx`INSERT INTO accounts (name) VALUES (${tag + '-rollback'})`;
      await tx`SELECT count(*) FROM accounts WHERE id = ${aid}`;
      throw new Error('roll back');
    });
  } catch (e) {
    if (e.message !== 'roll back') throw e;
  }
  const [rb] = await sql`SELECT count(*)::int AS n FROM accounts WHERE name = ${tag + '-rollback'}`;
  check(rb.n === 0, 'sql.begin rolled back', rb);

  for (let i = 0; i < 3; i++) {
    const p = await sql`SELECT name FROM accounts WHERE id = ${aid}`;
    check(p.length === 1 && p[0].name === tag, `prepared query, run ${i + 1}`, p);
  }

  // Pipelined: several queries in flight on the pool's connections.
  const results = await Promise.all(Array.from({ length: 20 }, (_, i) => sql`SELECT ${i}::int + count(*)::int AS v FROM accounts WHERE id = ${aid}`));
  check(results.every((r, i) => r[0].v === i + 1), 'pipelined queries', results.map(r => r[0]));

  const unprepared = postgres(env.DATABASE_URL, { max: 1, prepare: false, onnotice: () => {} });
  for (let i = 0; i < 3; i++) {
    const p = await unprepared`SELECT name FROM accounts WHERE id = ${aid}`;
    check(p.length === 1 && p[0].name === tag, `prepare: false, run ${i + 1}`, p);
  }
  await unprepared.end();

  const o = await sql`SELECT * FROM accounts WHERE id = ${other}`;
  check(o.length === 0, "other tenant's row is not seen", o);
  const ou = await sql`UPDATE accounts SET name = 'stolen' WHERE id = ${other}`;
  check(ou.count === 0, "other tenant's row is not updated", ou.count);
  const od = await sql`DELETE FROM notes WHERE account_id = ${other}`;
  check(od.count === 0, "other tenant's notes are not deleted", od.count);
  const ts = await sql`SELECT DISTINCT tenant_id FROM accounts`;
  check(ts.length === 1 && ts[0].tenant_id === tenant, 'only its own tenant', ts);

  const d = await sql`DELETE FROM notes WHERE id = ${nid}`;
  check(d.count === 1, 'delete', d.count);

  try {
    await sql`SELECT * FROM secrets`;
    check(false, 'uncatalogued table refused', 'no error');
  } catch (e) {
    check(e.code === '42501' && e.message.startsWith('tenantproxy:'), 'uncatalogued table refused', [e.code, e.message]);
  }
  const [one] = await sql`SELECT 1 AS v`;
  check(one.v === 1, 'session usable after refusal', one);
  await sql.end();
}

run(main);
