// Proves check.mjs can fail: each case breaks one file in a copy of what the checker reads
// (the k6 scripts, the Rust routers, docker-compose.yml) and requires a FAIL with the
// expected message; the unbroken copy must pass. A case whose text is no longer in the file
// fails too, so the self-test cannot quietly stop testing anything. The cases call check()
// in this process (a process each would take seconds); the command line's exit code 1 is
// proven once, on the first broken copy (scripts/k6/check.sh has just seen it exit 0).
//
//   node selftest.mjs [--deps DIR]      (same --deps as check.mjs)
import { spawnSync } from 'node:child_process';
import { cpSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { check } from './check.mjs';

const here = dirname(fileURLToPath(import.meta.url));
const repo = join(here, '../..');
const { values: args } = parseArgs({ options: { deps: { type: 'string', default: here } } });

// [what breaks, file,
//    text -> its replacement (every occurrence),
//    expected output]
const CASES = [
  ['a route that does not exist', 'scripts/k6/lib/shop.js',
    '/api/products`', '/api/product`',
    /shop\.js:\d+:\d+: no route GET \/api\/product in services\/api-gateway/],
  ['a route renamed in Rust', 'services/api-gateway/src/lib.rs',
    '"/api/products"', '"/api/catalog"',
    /no route GET \/api\/products in/],
  ['a method the admin router lacks', 'crates/service-runtime/src/faults.rs',
    '.delete(reset_faults)', '',
    /\/admin\/faults in crates\/service-runtime\/src\/faults\.rs has no DELETE/],
  ['a threshold on an unknown metric', 'scripts/k6/load.js',
    "checks: ['rate>0.99']", "check: ['rate>0.99']",
    /load\.js:\d+:\d+: threshold on unknown metric "check"/],
  ['a threshold tag value the script never sets', 'scripts/k6/chaos.js',
    'phase:service_b_down}', 'phase:service_b_dwon}',
    /never sets phase="service_b_dwon"/],
  ['a threshold tag the script never sets', 'scripts/k6/chaos.js',
    "'checks{chaos:controller}'", "'checks{role:controller}'",
    /filters on tag "role", which the script never sets/],
  ['a threshold expression k6 cannot parse', 'scripts/k6/smoke.js',
    "'rate==1'", "'rate=1'",
    /threshold "rate=1" is not "aggregation operator number"/],
  ['an aggregation of another metric type', 'scripts/k6/smoke.js',
    "['count==1']", "['p(95)==1']",
    /p\(95\) is not an aggregation of a Counter metric/],
  ['an exec naming a missing function', 'scripts/k6/chaos.js',
    "exec: 'breakThings'", "exec: 'breakThing'",
    /scenario chaos: exec "breakThing" is not an exported function/],
  ['a syntax error', 'scripts/k6/smoke.js',
    'const POLL_INTERVAL_S = 0.5;', 'const POLL_INTERVAL_S = ;',
    /smoke\.js:\d+:\d+: Unexpected token/],
  ['an import of a file that does not exist', 'scripts/k6/smoke.js',
    "from './lib/shop.js'", "from './lib/shops.js'",
    /smoke\.js:\d+:\d+: import \.\/lib\/shops\.js: no such file/],
  ['an import of a name the library does not export', 'scripts/k6/smoke.js',
    '  traceIdOf,\n', '  traceIdFrom,\n',
    /does not export traceIdFrom/],
  ['an unknown k6 module', 'scripts/k6/smoke.js',
    "from 'k6/metrics'", "from 'k6/metric'",
    /import 'k6\/metric': not a relative file nor a k6 module/],
  ['an undocumented env var', 'scripts/k6/load.js',
    '__ENV.FRAUD_SHARE', '__ENV.FRAUD_RATIO',
    /__ENV\.FRAUD_RATIO is not documented/],
  ['an env var with no default nor compose value', 'scripts/k6/smoke.js',
    '__ENV.FULFIL_TIMEOUT, 30)', '__ENV.FULFIL_TIMEOUT)',
    /__ENV\.FULFIL_TIMEOUT has no default and docker-compose\.yml does not set it/],
  ['a K6_* env var', 'scripts/k6/smoke.js',
    'FULFIL_TIMEOUT', 'K6_FULFIL_TIMEOUT',
    /__ENV\.K6_FULFIL_TIMEOUT: k6 reads K6_\* as its own options/],
  ['a fault key the Rust struct rejects', 'scripts/k6/chaos.js',
    '{ latency_ms: SLOW_MS, error_rate: 0 }', '{ latency: SLOW_MS, error_rate: 0 }',
    /chaos\.js:\d+:\d+: fault key "latency" is not one of/],
  ['a fault route service-b does not have', 'scripts/k6/chaos.js',
    "{ route: 'POST /events',", "{ route: 'POST /event',",
    /fault route "POST \/event" is not a route of services\/service-b\/src/],
];

// What check.mjs reads, copied once; each case edits one file and puts it back.
const root = mkdtempSync(join(tmpdir(), 'k6-check-'));
const services = readdirSync(join(repo, 'services')).map((s) => `services/${s}/src`);
const inputs = ['scripts/k6', ...services, 'crates/service-runtime/src/faults.rs', 'docker-compose.yml'];
for (const path of inputs) {
  cpSync(join(repo, path), join(root, path), { recursive: true });
}
const cli = () =>
  spawnSync(process.execPath, [join(here, 'check.mjs'), '--root', root, '--deps', args.deps], { encoding: 'utf8' });

let passed = 0;
let failed = 0;
const report = (ok, name, detail) => {
  ok ? passed++ : failed++;
  console.log(`${ok ? 'ok  ' : 'FAIL'}  self-test: ${name}`);
  if (!ok) console.log(detail.replace(/^/gm, '      '));
};
try {
  const clean = check({ root, deps: args.deps });
  report(clean.ok, 'the unbroken copy passes', clean.lines.join('\n'));
  for (const [i, [name, file, text, replacement, expected]] of CASES.entries()) {
    const original = readFileSync(join(root, file), 'utf8');
    const broken = original.replaceAll(text, replacement);
    if (broken === original) {
      report(false, name, `"${text}" is not in ${file} any more: update this case`);
      continue;
    }
    writeFileSync(join(root, file), broken);
    const { ok, lines } = check({ root, deps: args.deps });
    const out = lines.join('\n');
    report(!ok && expected.test(out), `${name} fails`, `expected ${expected}:\n${out}`);
    if (i === 0) {
      const brokenCli = cli();
      report(brokenCli.status === 1, 'check.mjs exits 1 on it', brokenCli.stdout + brokenCli.stderr);
    }
    writeFileSync(join(root, file), original);
  }
} finally {
  rmSync(root, { recursive: true, force: true });
}
console.log(`${passed} passed, ${failed} failed`);
process.exit(failed ? 1 : 0);
