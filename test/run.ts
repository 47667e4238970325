// The README's test command (npm test): typecheck, then every test file listed explicitly (node --test with no
// file arguments can silently run zero .ts tests, DESIGN.md §10), then fail if zero tests ran or, under CI, any skipped.
import { spawnSync } from 'node:child_process';
import { mkdirSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { join, relative } from 'node:path';

const root = join(import.meta.dirname, '..');
process.chdir(root);

function findTests(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((e) => {
    const p = join(dir, e.name);
    if (e.isDirectory()) return e.name === 'bench' || e.name === 'fixtures' || e.name === 'fakes' ? [] : findTests(p);
    return e.name.endsWith('.test.ts') ? [relative(root, p)] : [];
  });
}

const only = process.argv.slice(2);
const files = only.length ? only : findTests('test').sort();
if (files.length === 0) {
  console.error('no test files found under test/');
  process.exit(1);
}

console.log('typecheck: tsc -p .');
const tsc = spawnSync(process.execPath, [join(root, 'node_modules/typescript/bin/tsc'), '-p', '.'], { stdio: 'inherit' });
if (tsc.status !== 0) {
  console.error('typecheck failed');
  process.exit(1);
}

mkdirSync('.tmp', { recursive: true });
const tap = join('.tmp', 'test-results.tap');
rmSync(tap, { force: true });
console.log(`running ${files.length} test files`);
const run = spawnSync(
  process.execPath,
  ['--import', 'tsx', '--test', '--test-concurrency=2', '--test-timeout=900000', '--test-reporter=spec', '--test-reporter-destination=stdout', '--test-reporter=tap', `--test-reporter-destination=${tap}`, ...files],
  { stdio: 'inherit', env: { ...process.env, NODE_NO_WARNINGS: '1' } },
);

const text = readFileSync(tap, 'utf8');
const num = (key: string) => Number(new RegExp(`^# ${key} (\\d+)$`, 'm').exec(text)?.[1] ?? 'NaN');
const [tests, pass, fail, skipped, todo, cancelled] = ['tests', 'pass', 'fail', 'skipped', 'todo', 'cancelled'].map(num) as number[];
let ok = run.status === 0;
if (!Number.isFinite(tests) || tests === 0) {
  console.error('zero tests ran: that is a failure, not a pass');
  ok = false;
}
if (process.env.CI && (skipped! > 0 || todo! > 0)) {
  console.error(`CI: ${skipped} skipped and ${todo} todo tests; under CI every tool is installed and nothing may be skipped`);
  ok = false;
}
console.log(`${pass} passed, ${fail! + cancelled!} failed, ${skipped} skipped`);
process.exit(ok ? 0 : 1);
