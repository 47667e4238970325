// rotate and verify-latest on disk: dry-run equals the real run, incomplete sets never count, age and deep drills.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, renameSync, rmSync, writeFileSync, utimesSync, copyFileSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { writeSet } from './helpers/fake-sets.ts';
import { runScriptProcess } from './helpers/scripts.ts';
import { requireTools } from './helpers/tools.ts';
import { startBackupEnv, type BackupEnv } from './helpers/backup-env.ts';
import { listCompleteSets } from '../lib/backup-set.ts';
import { sha256File } from '../lib/fs-util.ts';

const HOUR = 3_600_000;

function scratchConfig(dir: string, extra = '') {
  const path = join(dir, 'ops.config.yaml');
  // A source is needed for verify-latest; rotate only reads manifests. The URL is never contacted here.
  writeFileSync(path, `backup:\n  root: ./backups\n  timezone: Europe/Berlin\n  maxAge: 26h\n  retention: { last: 2, daily: 3, weekly: 2 }\nsources:\n  postgres: { via: local, url: "postgresql://u@127.0.0.1:1/x", databases: [llc] }\nmonitoring:\n  textfileDir: ./textfile\n${extra}`);
  return path;
}

function sets(root: string): string[] {
  return readdirSync(root).filter((n) => /^\d{8}T\d{6}Z$/.test(n)).sort();
}

test('rotate --dry-run prints exactly what a real rotate then removes; incomplete sets are never counted', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'llc-rot-'));
  try {
    const root = join(dir, 'backups');
    const now = Date.now();
    // Forty days of nightly sets, some days with two.
    for (let d = 0; d < 40; d++) writeSet(root, new Date(now - d * 24 * HOUR - 2 * HOUR));
    for (const d of [1, 5, 9]) writeSet(root, new Date(now - d * 24 * HOUR - 5 * HOUR));
    // Newer than all, but incomplete: a staged set, one without a manifest, one with a broken manifest.
    mkdirSync(join(root, '.staging', '20991231T000000Z'), { recursive: true });
    mkdirSync(join(root, '20991230T000000Z'));
    mkdirSync(join(root, '20991229T000000Z'));
    writeFileSync(join(root, '20991229T000000Z', 'manifest.json'), '{"id": broken');
    // A complete set renamed to lower case: not a set as written, reported rather than silently ignored.
    const renamed = writeSet(root, new Date(now - 3 * HOUR));
    renameSync(join(root, renamed), join(root, '20991231t000000z'));
    const config = scratchConfig(dir);
    const before = sets(root);
    const dry = await runScriptProcess('rotate', ['--config', config, '--dry-run', '--json']);
    assert.equal(dry.code, 0, dry.stderr);
    const plan = JSON.parse(dry.stdout) as { keep: { id: string; reasons: string[] }[]; remove: string[] };
    assert.deepEqual(sets(root), before, 'dry run removed nothing');
    assert.ok(plan.remove.length > 0 && plan.keep.length > 0);
    assert.ok(!plan.keep.some((k) => k.id.startsWith('2099')) && !plan.remove.some((r) => r.startsWith('2099')), 'incomplete sets are neither kept nor removed');
    assert.match(dry.stderr, /not counted and not removed: incomplete set 20991230T000000Z/);
    assert.match(dry.stderr, /not counted and not removed: incomplete set 20991231t000000z \(not a set id as written \(sets are named like 20991231T000000Z\)\)/);
    assert.ok(plan.keep.every((k) => k.reasons.length > 0));
    const real = await runScriptProcess('rotate', ['--config', config, '--json']);
    assert.equal(real.code, 0, real.stderr);
    const removed = before.filter((id) => !sets(root).includes(id));
    assert.deepEqual(removed.sort(), [...plan.remove].sort(), 'the real run removed exactly the dry-run plan');
    assert.deepEqual((JSON.parse(real.stdout) as { remove: string[] }).remove.sort(), [...plan.remove].sort());
    assert.ok(existsSync(join(root, '20991230T000000Z')) && existsSync(join(root, '20991229T000000Z')), 'incomplete sets left alone');
    // Newest complete kept; staging of today survives (not older than a day).
    assert.ok(existsSync(join(root, '.staging', '20991231T000000Z')));
    const prom = readFileSync(join(dir, 'textfile', 'llc_rotate.prom'), 'utf8');
    assert.match(prom, /^llc_rotate_last_run_status 1$/m);
    assert.match(prom, new RegExp(`^llc_rotate_sets_removed ${plan.remove.length}$`, 'm'));
    // Idempotent: a second run removes nothing.
    const again = await runScriptProcess('rotate', ['--config', config, '--json']);
    assert.deepEqual((JSON.parse(again.stdout) as { remove: string[] }).remove, []);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('rotate removes staging directories older than a day and refuses an empty policy', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'llc-rot-'));
  try {
    const root = join(dir, 'backups');
    writeSet(root, new Date(Date.now() - HOUR));
    const old = join(root, '.staging', '20200101T000000Z');
    mkdirSync(old, { recursive: true });
    const past = new Date(Date.now() - 2 * 24 * HOUR);
    utimesSync(old, past, past);
    const fresh = join(root, '.staging', 'fresh');
    mkdirSync(fresh, { recursive: true });
    // --dry-run lists what the real run removes, staging included, and removes nothing.
    const dry = await runScriptProcess('rotate', ['--config', scratchConfig(dir), '--dry-run']);
    assert.equal(dry.code, 0, dry.stdout + dry.stderr);
    assert.match(dry.stdout, /remove {2}\.staging\/20200101T000000Z \(a staging directory older than a day\)/);
    assert.doesNotMatch(dry.stdout, /\.staging\/fresh/);
    assert.equal(existsSync(old), true);
    const r = await runScriptProcess('rotate', ['--config', scratchConfig(dir)]);
    assert.equal(r.code, 0, r.stdout + r.stderr);
    assert.equal(existsSync(old), false);
    assert.match(r.stdout, /removed a staging directory older than a day/);
    assert.equal(existsSync(fresh), true, 'a fresh staging directory may be a running backup');
    // Metrics that cannot be written (a file where the directory should be) warn; the removal stands (exit 0).
    writeSet(root, new Date(Date.now() - 30 * 24 * HOUR));
    writeSet(root, new Date(Date.now() - 31 * 24 * HOUR));
    writeSet(root, new Date(Date.now() - 60 * 24 * HOUR));
    rmSync(join(dir, 'textfile'), { recursive: true, force: true });
    writeFileSync(join(dir, 'textfile'), 'not a directory');
    const m = await runScriptProcess('rotate', ['--config', scratchConfig(dir), '--json']);
    assert.equal(m.code, 0, m.stdout + m.stderr);
    assert.match(m.stderr + m.stdout, /could not write metrics/);
    assert.ok((JSON.parse(m.stdout) as { remove: string[] }).remove.length > 0);
    const empty = join(dir, 'empty.yaml');
    writeFileSync(empty, `backup:\n  root: ./backups\n  retention: {}\n`);
    const e = await runScriptProcess('rotate', ['--config', empty]);
    assert.equal(e.code, 2);
    assert.match(e.stdout + e.stderr, /backup\.retention: the retention policy is empty/);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('verify-latest: a set older than maxAge exits 4; incomplete newer sets are ignored; metrics record the failure', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'llc-ver-'));
  try {
    const root = join(dir, 'backups');
    const id = writeSet(root, new Date(Date.now() - 30 * HOUR));
    mkdirSync(join(root, '20991230T000000Z'));
    const config = scratchConfig(dir);
    const r = await runScriptProcess('verify-latest', ['--config', config, '--json']);
    assert.equal(r.code, 4, r.stdout + r.stderr);
    const doc = JSON.parse(r.stdout) as { set: string; problems: string[] };
    assert.equal(doc.set, id, 'the incomplete newer set was not picked');
    assert.match(doc.problems.join('\n'), /more than backup\.maxAge 26h/);
    const prom = readFileSync(join(dir, 'textfile', 'llc_verify.prom'), 'utf8');
    assert.match(prom, /^llc_verify_last_run_status\{level="quick"\} 0$/m);
    assert.doesNotMatch(prom, /llc_verify_last_success_timestamp_seconds\{level="quick"\}/);
    const fresh = writeSet(root, new Date(Date.now() - HOUR), { payload: 'x' });
    const ok = await runScriptProcess('verify-latest', ['--config', config, '--checksums', '--json']);
    assert.equal(ok.code, 4, 'a fake dump fails the full read');
    assert.match(ok.stdout, new RegExp(fresh));
    const q = await runScriptProcess('verify-latest', ['--config', config, '--json']);
    assert.equal(q.code, 0, q.stdout + q.stderr);
    assert.match((JSON.parse(q.stdout) as { warnings: string[] }).warnings.join(''), /smaller than/, 'a set much smaller than the previous one warns');
    const prom2 = readFileSync(join(dir, 'textfile', 'llc_verify.prom'), 'utf8');
    assert.match(prom2, /^llc_verify_last_run_status\{level="quick"\} 1$/m);
    assert.match(prom2, /^llc_verify_last_run_status\{level="checksums"\} 0$/m, 'the other level is carried over');
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('verify-latest: a set dated in the future exits 4; --from leaves the metrics alone; a startedAt unlike its id makes a set incomplete', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'llc-ver-future-'));
  try {
    const root = join(dir, 'backups');
    const old = writeSet(root, new Date(Date.now() - 5 * 24 * HOUR));
    const future = writeSet(root, new Date(Date.now() + 200 * 24 * HOUR));
    const config = scratchConfig(dir);
    const r = await runScriptProcess('verify-latest', ['--config', config, '--json']);
    assert.equal(r.code, 4, r.stdout + r.stderr);
    const doc = JSON.parse(r.stdout) as { set: string; problems: string[] };
    assert.equal(doc.set, future);
    assert.match(doc.problems.join('\n'), /dated .* in the future/);
    const prom = join(dir, 'textfile', 'llc_verify.prom');
    const before = readFileSync(prom, 'utf8');
    assert.match(before, /^llc_verify_last_run_status\{level="quick"\} 0$/m);
    // An older set checked by hand: its own result, and the newest set's failure stays what alerts see.
    const byHand = await runScriptProcess('verify-latest', ['--config', config, '--from', old, '--json']);
    assert.equal(byHand.code, 4, 'five days old: more than maxAge');
    assert.match((JSON.parse(byHand.stdout) as { problems: string[] }).problems.join(''), new RegExp(`^set ${old} is .* old`));
    assert.equal(readFileSync(prom, 'utf8'), before);
    // --from with an empty value (a runbook's "$ID" unset) is a usage error and leaves the metrics alone too.
    const empty = await runScriptProcess('verify-latest', ['--config', config, '--from', '']);
    assert.equal(empty.code, 2, empty.stdout + empty.stderr);
    assert.equal(readFileSync(prom, 'utf8'), before);
    assert.match(r.stderr + r.stdout, /dated \d+ d \d+ h in the future/);
    // A leap second passes the schema's date-time format but is no time at all; another second is another set.
    rmSync(join(root, future), { recursive: true });
    for (const startedAt of ['2016-12-31T23:59:60Z', new Date(Date.now() - 2 * HOUR).toISOString()]) {
      const id = writeSet(root, new Date(Date.now() - HOUR));
      const m = JSON.parse(readFileSync(join(root, id, 'manifest.json'), 'utf8')) as { startedAt: string };
      writeFileSync(join(root, id, 'manifest.json'), JSON.stringify({ ...m, startedAt }));
      assert.ok(!(await listCompleteSets(root)).some((s) => s.id === id), startedAt);
      const rot = await runScriptProcess('rotate', ['--config', config, '--dry-run', '--json']);
      assert.match(rot.stderr, new RegExp(`incomplete set ${id} \\(manifest startedAt ${startedAt.replace(/[.]/g, '\\.')} does not match directory ${id}\\)`));
      rmSync(join(root, id), { recursive: true });
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

const skip = requireTools(['/usr/lib/postgresql/15/bin/initdb', 'zstd', 'psql', 'pg_dump', 'pg_restore']);
let env: BackupEnv;
before(async () => {
  if (skip) return;
  env = await startBackupEnv();
  env.pg.sql('CREATE DATABASE app; CREATE DATABASE other;');
  env.pg.sql('CREATE TABLE items (id int); INSERT INTO items SELECT generate_series(1, 300);', 'app');
  env.pg.sql('CREATE TABLE items (id int); INSERT INTO items SELECT generate_series(1, 299);', 'other');
});
after(() => env?.destroy());

const scratchDbs = () => env.pg.sql("SELECT count(*) FROM pg_database WHERE datname LIKE 'llc_%';");

test('verify-latest --deep: a good set passes and leaves no scratch database; a swapped dump fails on counts', { skip }, async () => {
  const config = env.config({ databases: ['app'], name: 'deep.yaml' });
  const b = await runScriptProcess('backup-all', ['--config', config, '--json']);
  assert.equal(b.code, 0, b.stderr);
  const id = (JSON.parse(b.stdout) as { id: string }).id;
  const good = await runScriptProcess('verify-latest', ['--config', config, '--deep', '--json']);
  assert.equal(good.code, 0, good.stdout + good.stderr);
  assert.equal(scratchDbs(), '0', 'no scratch database left');
  // A drill that cannot reach the server says nothing about the set: exit 1, not 4.
  const refused = await runScriptProcess('verify-latest', ['--config', config, '--deep'], { env: { TEST_PGPASSWORD: 'not-the-password' } });
  assert.equal(refused.code, 1, refused.stdout + refused.stderr);
  assert.match(refused.stdout + refused.stderr, /password authentication failed/);
  assert.doesNotMatch(refused.stdout + refused.stderr, /failed verification/);
  assert.equal(env.pg.sql('SELECT count(*) FROM items;', 'app'), '300', 'live data untouched');
  // Swap in another valid dump (of a database with one row less) and make the manifest agree on size and sha256.
  const otherCfg = env.config({ databases: ['other'], name: 'other.yaml' });
  const ob = await runScriptProcess('backup-all', ['--config', otherCfg, '--json']);
  assert.equal(ob.code, 0, ob.stderr);
  const other = (await listCompleteSets(env.root)).find((s) => s.id === (JSON.parse(ob.stdout) as { id: string }).id)!;
  const set = (await listCompleteSets(env.root)).find((s) => s.id === id)!;
  const target = set.manifest.artifacts.find((a) => a.path.endsWith('.dump.zst'))!;
  copyFileSync(join(other.dir, other.manifest.artifacts.find((a) => a.path.endsWith('.dump.zst'))!.path), join(set.dir, target.path));
  const m = JSON.parse(readFileSync(join(set.dir, 'manifest.json'), 'utf8')) as typeof set.manifest;
  const entry = m.artifacts.find((a) => a.path === target.path)!;
  entry.size = statSync(join(set.dir, target.path)).size;
  entry.sha256 = await sha256File(join(set.dir, target.path));
  writeFileSync(join(set.dir, 'manifest.json'), JSON.stringify(m));
  const cs = await runScriptProcess('verify-latest', ['--config', config, '--checksums', '--from', id]);
  assert.equal(cs.code, 0, 'checksums and the full read cannot tell: the dump is valid');
  const bad = await runScriptProcess('verify-latest', ['--config', config, '--deep', '--from', id, '--json']);
  assert.equal(bad.code, 4, bad.stdout + bad.stderr);
  assert.match((JSON.parse(bad.stdout) as { problems: string[] }).problems.join('\n'), /app public\.items: expected 300, found 299/);
  assert.equal(scratchDbs(), '0', 'no scratch database left after a failed drill either');
});
