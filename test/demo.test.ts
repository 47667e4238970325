// npm run demo (the README's main job) as the newcomer runs it: the round trip, and Ctrl-C pressed once or twice
// during the sample load: the throwaway PostgreSQL and every temp dir go in each case.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { chmodSync, mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { execFileSync } from 'node:child_process';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { requireTools } from './helpers/tools.ts';
import { runScriptProcess } from './helpers/scripts.ts';

const skip = requireTools(['/usr/lib/postgresql/15/bin/initdb', 'zstd', 'psql', 'pg_dump', 'pg_restore']);

/** A temp dir of this test's own (TMPDIR of the demo, readable by the postgres user): leftovers show up only here. */
function ownTmp(t: { after: (fn: () => void) => void }): string {
  const dir = mkdtempSync(join(tmpdir(), 'llc-demo-test-'));
  chmodSync(dir, 0o755);
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  return dir;
}

/** What the demo left in its temp dir (tsx keeps its compile cache there: not the demo's). */
const leftovers = (dir: string) => readdirSync(dir).filter((n) => !n.startsWith('tsx-'));

const postmasters = (dir: string) => {
  try {
    return execFileSync('pgrep', ['-f', `postgres -D ${dir}`], { encoding: 'utf8' }).trim();
  } catch {
    return '';
  }
};

test('npm run demo: the round trip exits 0 with equal counts and leaves nothing behind', { skip }, async (t) => {
  const tmp = ownTmp(t);
  const r = await runScriptProcess('demo', [], { env: { TMPDIR: tmp } });
  assert.equal(r.code, 0, r.stdout + r.stderr);
  assert.match(r.stdout, /round trip complete: the restored database has the same row counts/);
  assert.deepEqual(leftovers(tmp), []);
});

for (const times of [1, 2]) {
  test(`npm run demo: Ctrl-C ${times === 1 ? 'once' : 'twice'} during the sample load stops it and leaves no cluster or temp dir`, { skip }, async (t) => {
    const tmp = ownTmp(t);
    const r = await runScriptProcess('demo', ['--rows', '2000000'], { env: { TMPDIR: tmp }, interrupt: { when: /load sample data|PostgreSQL 1\d on/, signal: 'SIGINT', times, every: 20 } });
    assert.notEqual(r.code, 0, r.stdout + r.stderr);
    // Twice: whether the second arrives while the first one's cleanup runs (exit at once, the exit hook cleans up) or
    // after it (nothing left to do), nothing may stay behind.
    assert.equal(postmasters(tmp), '', 'no PostgreSQL of the demo still running');
    assert.deepEqual(leftovers(tmp), [], 'no temp dir left');
  });
}
