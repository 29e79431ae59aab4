# ActiveRecord 6.1 scenario of tenantproxy's client compatibility matrix
# (see e2e/clients_test.go). The models leave the tenant column unset: the
# proxy fills it on insert and confines every read and write.
require 'pg'
require 'active_record'
require_relative 'common'

puts "version: ActiveRecord #{ActiveRecord.version}, ruby-pg #{PG::VERSION}, Ruby #{RUBY_VERSION}"
ActiveRecord::Base.establish_connection(ENV.fetch('DATABASE_URL'))

class Account < ActiveRecord::Base
  has_many :notes
end

class Note < ActiveRecord::Base
  belongs_to :account
end

conn = ActiveRecord::Base.connection
check(conn.table_exists?('accounts') && conn.tables.include?('notes'), 'introspect tables', conn.tables)
check(Account.column_names == %w[id tenant_id name created_at], 'introspect columns', Account.column_names)
check(Account.primary_key == 'id', 'introspect primary key', Account.primary_key)

acc = Account.create!(name: TAG)
note = acc.notes.create!(body: 'hello')
check(Account.where(id: acc.id).pick(:tenant_id) == TENANT, 'insert fills the tenant')

rows = Note.joins(:account).where(accounts: { id: acc.id }).pluck('accounts.name', :body)
check(rows == [[TAG, 'hello']], 'join reads back', rows)

check(Note.where(id: note.id).update_all('stars = stars + 1') == 1, 'update')
note.update!(body: 'hello again')
check(Note.find(note.id).body == 'hello again', 'model update')

Account.transaction do
  Account.create!(name: "#{TAG}-rollback")
  raise ActiveRecord::Rollback
end
check(!Account.exists?(name: "#{TAG}-rollback"), 'rollback')

3.times do |i|
  check(Account.find(acc.id).name == TAG, "prepared query, run #{i + 1}")
end

check(Account.find_by(id: OTHER_ID).nil?, "other tenant's row is not seen")
check(Account.where(id: OTHER_ID).update_all(name: 'stolen').zero?, "other tenant's row is not updated")
check(Note.where(account_id: OTHER_ID).delete_all.zero?, "other tenant's notes are not deleted")
tenants = Account.distinct.pluck(:tenant_id)
check(tenants == [TENANT], 'only its own tenant', tenants)

note.destroy!
check(!Note.exists?(note.id), 'delete')

begin
  conn.select_all('SELECT * FROM secrets')
  check(false, 'uncatalogued table refused', 'no error')
rescue ActiveRecord::StatementInvalid => e
  check(e.cause.is_a?(PG::InsufficientPrivilege) && e.message.include?('tenantproxy:'), 'uncatalogued table refused',
        e.message)
end
check(Account.where(id: acc.id).count == 1, 'session usable after refusal')
