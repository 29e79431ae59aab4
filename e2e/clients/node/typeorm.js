// TypeORM (over pg) scenario of tenantproxy's client compatibility matrix:
// entity schemas over the existing tables, the tenant column left out.
'use strict';
require('reflect-metadata');
const { env, check, version, run, refused, tag, tenant, other } = require('./common');
const { DataSource, EntitySchema } = require('typeorm');

const Account = new EntitySchema({
  name: 'Account', tableName: 'accounts',
  columns: { id: { primary: true, type: 'bigint', generated: true }, name: { type: 'text' } },
});
const Note = new EntitySchema({
  name: 'Note', tableName: 'notes',
  columns: {
    id: { primary: true, type: 'bigint', generated: true },
    account_id: { type: 'bigint' }, body: { type: 'text' }, stars: { type: 'int', default: 0 },
  },
});

run(async () => {
  console.log(`version: typeorm ${version('typeorm')}, pg ${version('pg')}`);
  const ds = new DataSource({ type: 'postgres', url: env.DATABASE_URL, entities: [Account, Note], synchronize: false, poolSize: 2 });
  await ds.initialize();
  check(true, 'initialize');
  const accounts = ds.getRepository('Account');
  const notes = ds.getRepository('Note');

  const cols = await ds.query("SELECT column_name FROM information_schema.columns WHERE table_schema = 'public' AND table_name = $1 ORDER BY ordinal_position", ['accounts']);
  check(cols.map(r => r.column_name).join(',') === 'id,tenant_id,name,created_at', 'introspect', cols);

  const a = await accounts.save({ name: tag });
  const [row] = await ds.query('SELECT tenant_id FROM accounts WHERE id = $1', [a.id]);
  check(row.tenant_id === tenant, 'save fills the tenant', row);
  const n = await notes.save({ account_id: a.id, body: 'hello' });
  const j = await ds.createQueryBuilder().select(['a.name AS name', 'n.body AS body']).from('accounts', 'a')
    .innerJoin('notes', 'n', 'n.account_id = a.id').where('a.id = :id', { id: a.id }).getRawMany();
  check(j.length === 1 && j[0].name === tag && j[0].body === 'hello', 'join reads back', j);
  const u = await notes.update({ id: n.id }, { stars: 1 });
  check(u.affected === 1, 'update', u);

  try {
    await ds.transaction(async m => {
      await m.getRepository('Account').save({ name: tag + '-rollback' });
      throw new Error('roll back');
    });
  } catch (e) {
    if (e.message !== 'roll back') throw e;
  }
  check(await accounts.count({ where: { name: tag + '-rollback' } }) === 0, 'transaction rolled back');

  const raw = await ds.query('SELECT name FROM accounts WHERE id = $1', [a.id]);
  check(raw.length === 1 && raw[0].name === tag, 'raw query', raw);

  check(await accounts.findOneBy({ id: other }) === null, "other tenant's row is not seen");
  check((await accounts.update({ id: other }, { name: 'stolen' })).affected === 0, "other tenant's row is not updated");
  check((await notes.delete({ account_id: other })).affected === 0, "other tenant's notes are not deleted");
  const ts = await ds.query('SELECT DISTINCT tenant_id FROM accounts');
  check(ts.length === 1 && ts[0].tenant_id === tenant, 'only its own tenant', ts);
  check((await notes.delete({ id: n.id })).affected === 1, 'delete');

  try {
    await ds.query('SELECT * FROM secrets');
    check(false, 'uncatalogued table refused', 'no error');
  } catch (e) {
    check(refused(e), 'uncatalogued table refused', e.message);
  }
  check((await ds.query('SELECT 1 AS v'))[0].v === 1, 'session usable after refusal');
  await ds.destroy();
});
