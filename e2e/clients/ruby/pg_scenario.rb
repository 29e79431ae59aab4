# ruby-pg scenario of tenantproxy's client compatibility matrix (see
# e2e/clients_test.go): exec_params (unnamed extended protocol), prepare /
# exec_prepared (named statements) and copy_data.
require 'pg'
require_relative 'common'

puts "version: ruby-pg #{PG::VERSION}, libpq #{PG.library_version}, Ruby #{RUBY_VERSION}"
c = PG.connect(ENV.fetch('DATABASE_URL'))
c.type_map_for_results = PG::BasicTypeMapForResults.new(c)

cols = c.exec_params("SELECT column_name FROM information_schema.columns WHERE table_schema = 'public' " \
                     'AND table_name = $1 ORDER BY ordinal_position', ['accounts']).column_values(0)
check(cols == %w[id tenant_id name created_at], 'introspect', cols)

r = c.exec_params('INSERT INTO accounts (name) VALUES ($1) RETURNING id, tenant_id', [TAG])
aid = r[0]['id']
check(r[0]['tenant_id'] == TENANT, 'insert fills the tenant', r.to_a)
nid = c.exec_params('INSERT INTO notes (account_id, body) VALUES ($1, $2) RETURNING id', [aid, 'hello'])[0]['id']

r = c.exec_params('SELECT a.name, n.body FROM accounts a JOIN notes n ON n.account_id = a.id WHERE a.id = $1', [aid])
check(r.values == [[TAG, 'hello']], 'join reads back', r.values)

r = c.exec_params('UPDATE notes SET stars = stars + 1 WHERE id = $1', [nid])
check(r.cmd_tuples == 1, 'update', r.cmd_tuples)

begin
  c.transaction do
    c.exec_params('INSERT INTO accounts (name) VALUES ($1)', ["#{TAG}-rollback"])
    raise PG::Error, 'roll back'
  end
rescue PG::Error
end
n = c.exec_params('SELECT count(*) FROM accounts WHERE name = $1', ["#{TAG}-rollback"])[0]['count']
check(n.zero?, 'rollback', n)

c.prepare('account_by_id', 'SELECT name FROM accounts WHERE id = $1')
d = c.describe_prepared('account_by_id')
check(d.nfields == 1 && d.fname(0) == 'name', 'describe prepared', d.nfields)
3.times do |i|
  r = c.exec_prepared('account_by_id', [aid])
  check(r.column_values(0) == [TAG], "prepared query, run #{i + 1}", r.values)
end

c.copy_data('COPY notes (account_id, body) FROM STDIN') do
  c.put_copy_data("#{aid}\tcopied\n")
end
r = c.exec_params("SELECT tenant_id FROM notes WHERE account_id = $1 AND body = 'copied'", [aid])
check(r.column_values(0) == [TENANT], 'copy from stdin', r.values)
rows = []
c.copy_data("COPY (SELECT body FROM notes WHERE body = 'copied') TO STDOUT") do
  while (line = c.get_copy_data)
    rows << line
  end
end
check(rows == ["copied\n"], 'copy to stdout', rows)
c.exec_params("DELETE FROM notes WHERE account_id = $1 AND body = 'copied'", [aid])

check(c.exec_params('SELECT * FROM accounts WHERE id = $1', [OTHER_ID]).ntuples.zero?, "other tenant's row is not seen")
r = c.exec_params("UPDATE accounts SET name = 'stolen' WHERE id = $1", [OTHER_ID])
check(r.cmd_tuples.zero?, "other tenant's row is not updated", r.cmd_tuples)
r = c.exec_params('DELETE FROM notes WHERE account_id = $1', [OTHER_ID])
check(r.cmd_tuples.zero?, "other tenant's notes are not deleted", r.cmd_tuples)
r = c.exec('SELECT DISTINCT tenant_id FROM accounts')
check(r.column_values(0) == [TENANT], 'only its own tenant', r.values)

r = c.exec_params('DELETE FROM notes WHERE id = $1', [nid])
check(r.cmd_tuples == 1, 'delete', r.cmd_tuples)

begin
  c.exec('SELECT * FROM secrets')
  check(false, 'uncatalogued table refused', 'no error')
rescue PG::InsufficientPrivilege => e
  check(e.message.include?('tenantproxy:'), 'uncatalogued table refused', e.message)
end
check(c.exec('SELECT 1 AS one')[0]['one'] == 1, 'session usable after refusal')
c.close
