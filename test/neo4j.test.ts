// Neo4j through the docker stand-in and the Neo4j fake (test/fakes): stop, dump, start-in-finally; quiesce;
// restore with version and emptiness checks. The orchestration is ours and real; Neo4j and Docker are fakes.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { cpSync, existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { runScriptProcess, ROOT } from './helpers/scripts.ts';
import { startNeo4jFake, type Neo4jFake } from './fakes/neo4j-fake.ts';
import { listCompleteSets } from '../lib/backup-set.ts';
import { isTimestampedDump } from '../lib/sources/neo4j.ts';

const PASSWORD = 'neo-secret-Pa55';
let dir: string;
let neo: Neo4jFake;

before(async () => {
  dir = mkdtempSync(join(tmpdir(), 'llc-neo4j-'));
  neo = await startNeo4jFake({ store: join(dir, 'store'), password: PASSWORD });
  neo.setGraph('neo4j', { nodes: 1200, relationships: 3400 });
  writeFileSync(join(dir, 'compose.yaml'), 'services: {}\n');
  writeFileSync(join(dir, '.env'), `NEO4J_PASSWORD=${PASSWORD}\n`);
});
after(async () => {
  await neo.close();
  rmSync(dir, { recursive: true, force: true });
});

function config(name: string, url = neo.url, databases = ['neo4j', 'system'], root = './backups') {
  const path = join(dir, name);
  writeFileSync(
    path,
    `compose: { files: [compose.yaml], projectName: llc }\nbackup:\n  root: ${root}\n  quiesce: [workers]\nsources:\n  neo4j: { via: compose, httpUrl: "${url}", password: "\${NEO4J_PASSWORD}", databases: ${JSON.stringify(databases)} }\n`,
  );
  return path;
}

function fakeEnv(log: string, extra: Record<string, string> = {}) {
  return { PATH: `${join(ROOT, 'test/fakes')}:${process.env.PATH}`, FAKE_DOCKER_LOG: log, FAKE_NEO4J_STORE: neo.store, ...extra };
}

const calls = (log: string) =>
  readFileSync(log, 'utf8')
    .trim()
    .split('\n')
    .map((l) => (JSON.parse(l) as string[]).join(' '));

test('backup (Neo4j fake, docker stand-in): quiesce, stop, dump both databases, start; counts taken before the stop', async () => {
  const log = join(dir, 'ok.log');
  const r = await runScriptProcess('backup-all', ['--config', config('ok.yaml'), '--json', '--verbose'], { env: fakeEnv(log) });
  assert.equal(r.code, 0, r.stdout + r.stderr);
  const doc = JSON.parse(r.stdout) as { id: string };
  const set = (await listCompleteSets(join(dir, 'backups'))).find((s) => s.id === doc.id)!;
  assert.deepEqual(set.manifest.sources.neo4j!.counts, { neo4j: { nodes: 1200, relationships: 3400 } });
  assert.equal(set.manifest.sources.neo4j!.serverVersion, '5.26.12');
  assert.deepEqual(set.manifest.artifacts.map((a) => a.path).sort(), ['neo4j/neo4j.dump', 'neo4j/system.dump']);
  const seq = calls(log).map((c) => c.replace(/^compose -f \S+ -p llc /, ''));
  const order = ['stop workers', 'stop neo4j', 'database dump neo4j', 'database dump system', 'start neo4j', 'start workers'];
  let at = -1;
  for (const step of order) {
    const i = seq.findIndex((c, k) => k > at && c.includes(step));
    assert.ok(i > at, `${step} after the previous step in ${JSON.stringify(seq)}`);
    at = i;
  }
  assert.ok(seq.some((c) => c.startsWith('run --rm --no-deps -e NEO4J_PLUGINS= -v ') && c.includes(':/backups neo4j neo4j-admin database dump neo4j --to-path=/backups --overwrite-destination=true')));
  assert.ok(neo.running(), 'neo4j is up again');
  assert.match(r.stderr, /neo4j: neo4j was down for/);
  assert.ok(!(r.stdout + r.stderr + readFileSync(log, 'utf8')).includes(PASSWORD), 'password never printed or passed in argv');
});

test('a failed Neo4j dump still starts neo4j and the quiesced services; exit 1; no set published', async () => {
  const log = join(dir, 'fail.log');
  const before = (await listCompleteSets(join(dir, 'backups'))).length;
  const r = await runScriptProcess('backup-all', ['--config', config('fail.yaml')], { env: fakeEnv(log, { FAKE_DOCKER_FAIL: 'neo4j-admin database dump system' }) });
  assert.equal(r.code, 1, r.stdout + r.stderr);
  assert.match(r.stdout + r.stderr, /neo4j: dump system: /);
  const seq = calls(log);
  const failedAt = seq.findIndex((c) => c.includes('database dump system'));
  assert.ok(failedAt >= 0);
  assert.ok(seq.slice(failedAt).some((c) => / start neo4j$/.test(c)), 'start neo4j after the failure');
  assert.ok(seq.slice(failedAt).some((c) => / start workers$/.test(c)), 'start workers after the failure');
  assert.ok(neo.running());
  assert.equal((await listCompleteSets(join(dir, 'backups'))).length, before);
  assert.ok(!existsSync(join(dir, 'backups', '.staging')) || readFileSync(log, 'utf8').length > 0);
});

test('Ctrl-C during the Neo4j dump: neo4j and the quiesced services are started again; exit 1; no set', async () => {
  const log = join(dir, 'interrupt.log');
  const before = (await listCompleteSets(join(dir, 'backups'))).length;
  // Interrupted once the stand-in has started the (blocking) dump: the running child is stopped, then the cleanup.
  const r = await runScriptProcess('backup-all', ['--config', config('interrupt.yaml')], {
    env: fakeEnv(log, { FAKE_DOCKER_SLOW: 'neo4j-admin database dump neo4j' }),
    interrupt: { when: () => existsSync(log) && calls(log).some((c) => c.includes('database dump neo4j')), signal: 'SIGINT' },
  });
  assert.equal(r.code, 1, r.stdout + r.stderr);
  assert.match(r.stdout + r.stderr, /SIGINT received: stopping after cleanup/);
  const seq = calls(log);
  const dumpAt = seq.findIndex((c) => c.includes('database dump neo4j'));
  assert.ok(dumpAt >= 0, JSON.stringify(seq));
  assert.ok(seq.slice(dumpAt).some((c) => / start neo4j$/.test(c)), `start neo4j after the interrupt: ${JSON.stringify(seq.slice(dumpAt))}`);
  assert.ok(seq.slice(dumpAt).some((c) => / start workers$/.test(c)), 'start workers after the interrupt');
  assert.ok(!seq.some((c) => c.includes('database dump system')), 'nothing more was dumped');
  assert.ok(neo.running(), 'neo4j is up again');
  assert.equal((await listCompleteSets(join(dir, 'backups'))).length, before);
});

test('restore (Neo4j fake): refuses a non-empty graph without --force, loads with it, counts match', async () => {
  const cfg = config('restore.yaml');
  const log = join(dir, 'restore.log');
  const refused = await runScriptProcess('restore-all', ['--config', cfg, '--yes'], { env: fakeEnv(log) });
  assert.equal(refused.code, 5, refused.stdout + refused.stderr);
  assert.match(refused.stdout + refused.stderr, /database neo4j has 1200 nodes/);
  neo.setGraph('neo4j', { nodes: 5, relationships: 1 });
  const forced = await runScriptProcess('restore-all', ['--config', cfg, '--yes', '--force'], { env: fakeEnv(log) });
  assert.equal(forced.code, 0, forced.stdout + forced.stderr);
  assert.deepEqual(neo.graph('neo4j'), { nodes: 1200, relationships: 3400 });
  assert.ok(neo.running());
  assert.match(forced.stdout, /neo4j: counts match the manifest/);
  const seq = calls(log);
  assert.ok(seq.some((c) => c.includes('database load neo4j --from-path=/backups --overwrite-destination=true')));
});

test('restore (Neo4j fake) refuses a dump from a newer Neo4j than the target runs', async () => {
  const old = await startNeo4jFake({ store: join(dir, 'old-store'), version: '5.20.0', password: PASSWORD });
  try {
    const r = await runScriptProcess('restore-all', ['--config', config('older.yaml', old.url), '--yes', '--force'], { env: { ...fakeEnv(join(dir, 'older.log')), FAKE_NEO4J_STORE: old.store } });
    assert.equal(r.code, 5, r.stdout + r.stderr);
    assert.match(r.stdout + r.stderr, /dumped by Neo4j 5\.26\.12, the target runs 5\.20\.0/);
  } finally {
    await old.close();
  }
});

test('verify-latest --deep with Neo4j: no drill (one user database per Community server), a warning, exit 0; the live graph untouched', async () => {
  const cfg = config('deep.yaml');
  const log = join(dir, 'deep.log');
  const b = await runScriptProcess('backup-all', ['--config', cfg], { env: fakeEnv(join(dir, 'deep-backup.log')) });
  assert.equal(b.code, 0, b.stdout + b.stderr);
  const r = await runScriptProcess('verify-latest', ['--config', cfg, '--deep', '--json'], { env: fakeEnv(log) });
  assert.equal(r.code, 0, r.stdout + r.stderr);
  const doc = JSON.parse(r.stdout) as { ok: boolean; level: string; warnings: string[] };
  assert.equal(doc.ok, true);
  assert.equal(doc.level, 'deep');
  assert.ok(doc.warnings.some((w) => /^neo4j: a restore drill needs a second Neo4j server .*checked by checksums only$/.test(w)), JSON.stringify(doc.warnings));
  const seq = existsSync(log) ? calls(log) : [];
  assert.ok(!seq.some((c) => / stop neo4j$/.test(c) || c.includes('database load')), `the live server was left alone: ${JSON.stringify(seq)}`);
  assert.ok(neo.running());
});

test('dump file names: <db>.dump, or <db>-<timestamp>; another database whose name starts the same is not one of them', async () => {
  assert.equal(isTimestampedDump('foo-2026-11-24T02-30-00.backup', 'foo'), true);
  assert.equal(isTimestampedDump('foo-20261124.dump', 'foo'), true);
  assert.equal(isTimestampedDump('foo-bar.dump', 'foo'), false);
  assert.equal(isTimestampedDump('foo-bar-2026-11-24T02-30-00.backup', 'foo'), false);
  // Two databases, one name the prefix of the other: each set file holds its own graph.
  neo.setGraph('foo', { nodes: 3, relationships: 1 });
  neo.setGraph('foo-bar', { nodes: 7, relationships: 2 });
  const cfg = config('prefix.yaml', neo.url, ['foo', 'foo-bar']);
  const b = await runScriptProcess('backup-all', ['--config', cfg, '--json'], { env: fakeEnv(join(dir, 'prefix.log')) });
  assert.equal(b.code, 0, b.stdout + b.stderr);
  const set = (await listCompleteSets(join(dir, 'backups'))).find((x) => x.id === (JSON.parse(b.stdout) as { id: string }).id)!;
  const graphOf = (db: string) => (JSON.parse(readFileSync(join(set.dir, 'neo4j', `${db}.dump`), 'utf8')) as { db: string }).db;
  assert.equal(graphOf('foo'), 'foo');
  assert.equal(graphOf('foo-bar'), 'foo-bar');
});

test('restore on a fresh host: a root holding only a copied set (no .staging), the dump readable by uid 7474 as the image runs neo4j-admin, the set untouched', async () => {
  const log = join(dir, 'fresh.log');
  const b = await runScriptProcess('backup-all', ['--config', config('fresh-src.yaml'), '--json'], { env: fakeEnv(join(dir, 'fresh-src.log')) });
  assert.equal(b.code, 0, b.stdout + b.stderr);
  const id = (JSON.parse(b.stdout) as { id: string }).id;
  const freshRoot = join(dir, 'fresh-root');
  cpSync(join(dir, 'backups', id), join(freshRoot, id), { recursive: true, preserveTimestamps: true });
  const dump = join(freshRoot, id, 'neo4j', 'neo4j.dump');
  const before = statSync(dump);
  neo.setGraph('neo4j', { nodes: 0, relationships: 0 });
  const r = await runScriptProcess('restore-all', ['--config', config('fresh.yaml', neo.url, ['neo4j', 'system'], freshRoot), '--yes'], { env: fakeEnv(log) });
  assert.equal(r.code, 0, r.stdout + r.stderr);
  assert.deepEqual(neo.graph('neo4j'), { nodes: 1200, relationships: 3400 });
  const after = statSync(dump);
  assert.deepEqual([after.uid, after.mode], [before.uid, before.mode], "the set's file keeps its owner and mode");
  assert.deepEqual(readdirSync(join(freshRoot, '.staging')), [], 'the load directory is gone');
});

test('backup-all --dry-run with Neo4j: the stop, dumps and start are planned, nothing runs, no downtime is reported', async () => {
  const log = join(dir, 'dry.log');
  const r = await runScriptProcess('backup-all', ['--config', config('dry.yaml'), '--dry-run'], { env: fakeEnv(log) });
  assert.equal(r.code, 0, r.stdout + r.stderr);
  assert.match(r.stdout, /plan +docker compose .* stop neo4j/);
  assert.match(r.stdout, /plan +docker compose .*neo4j-admin database dump neo4j/);
  assert.doesNotMatch(r.stdout + r.stderr, /was down for/);
  assert.ok(!existsSync(log) || !calls(log).some((c) => / (stop|start) /.test(c) || c.includes('neo4j-admin')), 'no docker call that changes anything');
  assert.ok(neo.running());
});
