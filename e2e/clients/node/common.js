// Shared helpers of the Node scenarios of tenantproxy's client matrix.
'use strict';
const fs = require('fs');
const path = require('path');

const env = process.env;

// check prints "ok <step>", or fails the scenario with the detail.
function check(cond, step, detail) {
  if (!cond) throw new Error(`FAIL ${step}: ${JSON.stringify(detail)}`);
  console.log(`ok ${step}`);
}

// version is an installed package's version (read from its package.json,
// which some packages do not export).
function version(pkg) {
  return JSON.parse(fs.readFileSync(path.join(__dirname, 'node_modules', pkg, 'package.json'))).version;
}

// run runs a scenario and exits non-zero when it fails.
function run(main) {
  main().then(() => process.exit(0), e => {
    console.log(String(e.message).startsWith('FAIL') ? e.message : `FAIL ${e.stack}`);
    process.exit(1);
  });
}

// refused checks that err is the proxy's refusal (42501).
function refused(err) {
  const code = err.code || (err.original && err.original.code) || (err.driverError && err.driverError.code);
  const msg = err.message || '';
  return code === '42501' && msg.includes('tenantproxy:');
}

module.exports = { env, check, version, run, refused, tag: env.TP_TAG, tenant: Number(env.TP_TENANT), other: Number(env.TP_OTHER_ID) };
