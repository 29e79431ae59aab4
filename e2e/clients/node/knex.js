// Knex (over pg) scenario of tenantproxy's client compatibility matrix.
'use strict';
const { env, check, version, run, refused, tag, tenant, other } = require('./common');
const knexlib = require('knex');

run(async () => {
  console.log(`version: knex ${version('knex')}, pg ${version('pg')}`);
  const knex = knexlib({ client: 'pg', connection: env.DATABASE_URL, pool: { min: 0, max: 2 } });

  const cols = await knex('information_schema.columns').where({ table_schema: 'public', table_name: 'accounts' })
    .orderBy('ordinal_position').pluck('column_name');
  check(cols.join(',') === 'id,tenant_id,name,created_at', 'introspect', cols);

  const [a] = await knex('accounts').insert({ name: tag }).returning(['id', 'tenant_id']);
  check(a.tenant_id === tenant, 'insert fills the tenant', a);
  const [n] = await knex('notes').insert({ account_id: a.id, body: 'hello' }).returning('id');
  const j = await knex('accounts as a').join('notes as n', 'n.account_id', 'a.id').where('a.id', a.id).select('a.name', 'n.body');
  check(j.length === 1 && j[0].name === tag && j[0].body === 'hello', 'join reads back', j);
  const u = await knex('notes').where({ id: n.id }).increment('stars', 1);
  check(u === 1, 'update', u);

  try {
    await knex.transaction(async trx => {
      await trx('accounts').insert({ name: tag + '-rollback' });
      throw new Error('roll back');
    });
  } catch (e) {
    if (e.message !== 'roll back') throw e;
  }
  const [{ count }] = await knex('accounts').where({ name: tag + '-rollback' }).count();
  check(Number(count) === 0, 'transaction rolled back', count);

  const raw = await knex.raw('SELECT name FROM accounts WHERE id = ?', [a.id]);
  check(raw.rows.length === 1 && raw.rows[0].name === tag, 'raw query', raw.rows);

  check((await knex('accounts').where({ id: other })).length === 0, "other tenant's row is not seen");
  check(await knex('accounts').where({ id: other }).update({ name: 'stolen' }) === 0, "other tenant's row is not updated");
  check(await knex('notes').where({ account_id: other }).del() === 0, "other tenant's notes are not deleted");
  const ts = await knex('accounts').distinct('tenant_id');
  check(ts.length === 1 && ts[0].tenant_id === tenant, 'only its own tenant', ts);
  check(await knex('notes').where({ id: n.id }).del() === 1, 'delete');

  try {
    await knex('secrets').select();
    check(false, 'uncatalogued table refused', 'no error');
  } catch (e) {
    check(refused(e), 'uncatalogued table refused', e.message);
  }
  check((await knex.raw('SELECT 1 AS v')).rows[0].v === 1, 'session usable after refusal');
  await knex.destroy();
});
