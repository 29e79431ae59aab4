// node-postgres scenario of tenantproxy's client compatibility matrix
// (see e2e/clients_test.go). Reads DATABASE_URL, TP_TENANT, TP_TAG and
// TP_OTHER_ID; prints "ok <step>" per step and exits non-zero on failure.
'use strict';
const { Client } = require('pg');

const env = process.env;

function check(cond, step, detail) {
  if (!cond) throw new Error(`FAIL ${step}: ${JSON.stringify(detail)}`);
  console.log(`ok ${step}`);
}

async function main() {
  console.log(`version: node-postgres ${require('pg/package.json').version}, Node.js ${process.version}`);
  const c = new Client({ connectionString: env.DATABASE_URL });
  await c.connect();
  const tag = env.TP_TAG;
  const other = env.TP_OTHER_ID;

  const cols = await c.query(
    "SELECT column_name FROM information_schema.columns WHERE table_schema = 'public' AND table_name = $1 ORDER BY ordinal_position",
    ['accounts']);
  check(cols.rows.map(r => r.column_name).join(',') === 'id,tenant_id,name,created_at', 'introspect', cols.rows);

  const a = await c.query('INSERT INTO accounts (name) VALUES ($1) RETURNING id, tenant_id', [tag]);
  const aid = a.rows[0].id;
  check(String(a.rows[0].tenant_id) === env.TP_TENANT, 'insert fills the tenant', a.rows);
  const n = await c.query('INSERT INTO notes (account_id, body) VALUES ($1, $2) RETURNING id', [aid, 'hello']);
  const nid = n.rows[0].id;

  const j = await c.query(
    'SELECT a.name, n.body FROM accounts a JOIN notes n ON n.account_id = a.id WHERE a.id = $1', [aid]);
  check(j.rows.length === 1 && j.rows[0].name === tag && j.rows[0].body === 'hello', 'join reads back', j.rows);

  const u = await c.query('UPDATE notes SET stars = stars + 1 WHERE id = $1', [nid]);
  check(u.rowCount === 1, 'update', u.rowCount);

  await c.query('BEGIN');
  await c.query('INSERT INTO accounts (name) VALUES ($1)', [tag + '-rollback']);
  await c.query('ROLLBACK');
  const rb = await c.query('SELECT count(*)::int AS n FROM accounts WHERE name = $1', [tag + '-rollback']);
  check(rb.rows[0].n === 0, 'rollback', rb.rows);

  for (let i = 0; i < 3; i++) {
    const p = await c.query({ name: 'account-by-id', text: 'SELECT name FROM accounts WHERE id = $1', values: [aid] });
    check(p.rows.length === 1 && p.rows[0].name === tag, `prepared query, run ${i + 1}`, p.rows);
  }

  const o = await c.query('SELECT * FROM accounts WHERE id = $1', [other]);
  check(o.rows.length === 0, "other tenant's row is not seen", o.rows);
  const ou = await c.query('UPDATE accounts SET name = $1 WHERE id = $2', ['stolen', other]);
  check(ou.rowCount === 0, "other tenant's row is not updated", ou.rowCount);
  const od = await c.query('DELETE FROM notes WHERE account_id = $1', [other]);
  check(od.rowCount === 0, "other tenant's notes are not deleted", od.rowCount);
  const ts = await c.query('SELECT DISTINCT tenant_id FROM accounts');
  check(ts.rows.length === 1 && String(ts.rows[0].tenant_id) === env.TP_TENANT, 'only its own tenant', ts.rows);

  const d = await c.query('DELETE FROM notes WHERE id = $1', [nid]);
  check(d.rowCount === 1, 'delete', d.rowCount);

  let refused = null;
  try {
    await c.query('SELECT * FROM secrets');
  } catch (e) {
    refused = e;
  }
  check(refused && refused.code === '42501' && refused.message.startsWith('tenantproxy:'), 'uncatalogued table refused',
    refused && refused.message);
  const one = await c.query('SELECT 1 AS one');
  check(one.rows[0].one === 1, 'session usable after refusal', one.rows);
  await c.end();
}

main().catch(e => { console.error(e.stack || String(e)); process.exit(1); });
