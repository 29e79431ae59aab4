// Sequelize (over pg) scenario of tenantproxy's client compatibility
// matrix: models over the existing tables, the tenant column left out.
'use strict';
const { env, check, version, run, refused, tag, tenant, other } = require('./common');
const { Sequelize, DataTypes, QueryTypes } = require('sequelize');

run(async () => {
  console.log(`version: sequelize ${version('sequelize')}, pg ${version('pg')}`);
  const sequelize = new Sequelize(env.DATABASE_URL, { dialect: 'postgres', logging: false, pool: { max: 2 } });
  await sequelize.authenticate();
  check(true, 'authenticate');
  const Account = sequelize.define('Account', {
    id: { type: DataTypes.BIGINT, primaryKey: true, autoIncrement: true },
    name: { type: DataTypes.TEXT, allowNull: false },
  }, { tableName: 'accounts', timestamps: false });
  const Note = sequelize.define('Note', {
    id: { type: DataTypes.BIGINT, primaryKey: true, autoIncrement: true },
    account_id: { type: DataTypes.BIGINT, allowNull: false },
    body: { type: DataTypes.TEXT, allowNull: false },
    stars: { type: DataTypes.INTEGER, defaultValue: 0 },
  }, { tableName: 'notes', timestamps: false });
  Note.belongsTo(Account, { foreignKey: 'account_id' });

  // describeTable reads pg_statio_all_tables (statistics of every
  // tenant's rows), which the proxy refuses: it must say so clearly.
  try {
    await sequelize.getQueryInterface().describeTable('accounts');
    check(false, 'describeTable refused', 'no error');
  } catch (e) {
    check(refused(e) && e.message.includes('pg_statio_all_tables'), 'describeTable refused, with the reason', e.message);
  }
  const cols = await sequelize.query("SELECT column_name FROM information_schema.columns WHERE table_schema = 'public' AND table_name = 'accounts' ORDER BY ordinal_position", { type: QueryTypes.SELECT });
  check(cols.map(r => r.column_name).join(',') === 'id,tenant_id,name,created_at', 'introspect', cols);

  const a = await Account.create({ name: tag });
  const [[row]] = await sequelize.query('SELECT tenant_id FROM accounts WHERE id = $1', { bind: [a.id] });
  check(row.tenant_id === tenant, 'create fills the tenant', row);
  const n = await Note.create({ account_id: a.id, body: 'hello' });
  const j = await Note.findAll({ where: { id: n.id }, include: Account });
  check(j.length === 1 && j[0].Account.name === tag && j[0].body === 'hello', 'join reads back', j);
  const [changed] = await Note.update({ stars: 1 }, { where: { id: n.id } });
  check(changed === 1, 'update', changed);

  try {
    await sequelize.transaction(async t => {
      await Account.create({ name: tag + '-rollback' }, { transaction: t });
      throw new Error('roll back');
    });
  } catch (e) {
    if (e.message !== 'roll back') throw e;
  }
  check(await Account.count({ where: { name: tag + '-rollback' } }) === 0, 'transaction rolled back');

  const raw = await sequelize.query('SELECT name FROM accounts WHERE id = :id', { replacements: { id: a.id }, type: QueryTypes.SELECT });
  check(raw.length === 1 && raw[0].name === tag, 'raw query', raw);

  check(await Account.findByPk(other) === null, "other tenant's row is not seen");
  const [stolen] = await Account.update({ name: 'stolen' }, { where: { id: other } });
  check(stolen === 0, "other tenant's row is not updated", stolen);
  check(await Note.destroy({ where: { account_id: other } }) === 0, "other tenant's notes are not deleted");
  const ts = await sequelize.query('SELECT DISTINCT tenant_id FROM accounts', { type: QueryTypes.SELECT });
  check(ts.length === 1 && ts[0].tenant_id === tenant, 'only its own tenant', ts);
  check(await Note.destroy({ where: { id: n.id } }) === 1, 'delete');

  try {
    await sequelize.query('SELECT * FROM secrets', { type: QueryTypes.SELECT });
    check(false, 'uncatalogued table refused', 'no error');
  } catch (e) {
    check(refused(e), 'uncatalogued table refused', e.message);
  }
  check((await sequelize.query('SELECT 1 AS v', { type: QueryTypes.SELECT }))[0].v === 1, 'session usable after refusal');
  await sequelize.close();
});
