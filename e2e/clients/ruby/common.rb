# Shared helpers of the Ruby scenarios of tenantproxy's client matrix.
TAG = ENV.fetch('TP_TAG')
TENANT = Integer(ENV.fetch('TP_TENANT'))
OTHER_ID = Integer(ENV.fetch('TP_OTHER_ID'))

# check prints "ok <step>", or fails the scenario with the detail.
def check(cond, step, detail = nil)
  unless cond
    puts "FAIL #{step}: #{detail.inspect}"
    exit 1
  end
  puts "ok #{step}"
  $stdout.flush
end
