// Qdrant backup, verify and restore, run as an operator runs them (child processes) against the Qdrant FAKE in
// test/fakes/qdrant-fake.ts (no Qdrant can run here): checksums, versions, aliases, non-empty targets, the api key.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createHash, randomBytes } from 'node:crypto';
import { spawn } from 'node:child_process';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { requireTools } from './helpers/tools.ts';
import { ROOT, runScriptProcess, scriptPath, type ScriptRun } from './helpers/scripts.ts';
import { startQdrantFake, type QdrantFake } from './fakes/qdrant-fake.ts';
import { listCompleteSets, type CompleteSet } from '../lib/backup-set.ts';
import { sha256File } from '../lib/fs-util.ts';
import { minorVersion, snapshotFileName, versionMismatch } from '../lib/sources/qdrant.ts';

const KEY = `qk-${randomBytes(12).toString('hex')}`;
const HOSTILE = 'weird/../näme %2E.x';
let dir: string;
let root: string;
let source: QdrantFake;
const fakes: QdrantFake[] = [];

async function fake(opts: { version?: string; apiKey?: string } = {}): Promise<QdrantFake> {
  const f = await startQdrantFake({ apiKey: KEY, ...opts });
  fakes.push(f);
  return f;
}

async function call(f: QdrantFake, method: string, path: string, body?: unknown, key = KEY): Promise<unknown> {
  const res = await fetch(f.url + path, { method, headers: { 'api-key': key, 'content-type': 'application/json' }, body: body === undefined ? undefined : JSON.stringify(body) });
  const doc = (await res.json()) as { result?: unknown; status?: unknown };
  if (!res.ok) throw new Error(`${method} ${path}: ${res.status} ${JSON.stringify(doc.status)}`);
  return doc.result;
}

/** A collection with `n` points through the fake's REST API, as the app would write them. */
async function seed(f: QdrantFake, name: string, n: number, vectors: unknown = { size: 4, distance: 'Cosine' }): Promise<void> {
  await call(f, 'PUT', `/collections/${encodeURIComponent(name)}`, { vectors });
  const named = typeof vectors === 'object' && vectors !== null && !('size' in vectors);
  const points = Array.from({ length: n }, (_, i) => {
    const v = [i % 7, (i * 3) % 11, 1, i / n];
    return { id: i + 1, vector: named ? { text: v } : v, payload: { n: i, tag: `p${i % 5}` } };
  });
  await call(f, 'PUT', `/collections/${encodeURIComponent(name)}/points?wait=true`, { points });
}

function config(name: string, f: QdrantFake, extra: string[] = [], keyVar = 'QDRANT_API_KEY'): string {
  const path = join(dir, name);
  writeFileSync(path, ['backup:', `  root: ${root}`, 'sources:', '  qdrant:', `    url: ${f.url}`, `    apiKey: \${${keyVar}}`, ...(extra.some((l) => l.startsWith('timeout:')) ? [] : ['    timeout: 2m']), ...extra.map((l) => `    ${l}`), ''].join('\n'));
  return path;
}

const run = (script: string, args: string[]): Promise<ScriptRun> => runScriptProcess(script, args);
const output = (r: ScriptRun) => r.stdout + r.stderr;
const leftSnapshots = (f: QdrantFake) => [...f.snapshots.values()].reduce((n, m) => n + m.size, 0);
const pointsOf = (f: QdrantFake, name: string) => [...(f.collections.get(name)?.points.values() ?? [])];

async function backup(cfg: string): Promise<CompleteSet> {
  const b = await run('backup-all', ['--config', cfg, '--json']);
  assert.equal(b.code, 0, output(b));
  const id = (JSON.parse(b.stdout) as { id: string }).id;
  return (await listCompleteSets(root)).find((s) => s.id === id)!;
}

before(async () => {
  dir = mkdtempSync(join(tmpdir(), 'llc-qdrant-'));
  root = join(dir, 'backups');
  writeFileSync(join(dir, '.env'), `QDRANT_API_KEY=${KEY}\nWRONG_KEY=wrong-${KEY.slice(3)}\n`, { mode: 0o600 });
  source = await fake();
  await seed(source, 'docs', 120);
  await seed(source, HOSTILE, 7, { text: { size: 4, distance: 'Dot' } });
  await call(source, 'POST', '/collections/aliases', {
    actions: [{ create_alias: { alias_name: 'docs-live', collection_name: 'docs' } }, { create_alias: { alias_name: 'odd', collection_name: HOSTILE } }],
  });
});

after(async () => {
  for (const f of fakes) await f.close();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

test('snapshot file names: collection names never become paths, long names stay short and distinct', () => {
  for (const name of ['../x', 'a/b', '..', '.', 'a b', '%2E%2E', HOSTILE]) {
    const f = snapshotFileName(name);
    assert.ok(!f.includes('/') && !f.startsWith('.'), `${name} -> ${f}`);
  }
  assert.notEqual(snapshotFileName('%2E'), snapshotFileName('.'));
  const a = snapshotFileName('x'.repeat(300));
  const b = snapshotFileName(`${'x'.repeat(299)}y`);
  assert.ok(a.length <= 255 && b.length <= 255);
  assert.notEqual(a, b);
  // A short name spelled like a long name's cut form plus its hash gets a file of its own.
  const long = 'a'.repeat(210);
  const mimic = `${'a'.repeat(150)}-${createHash('sha256').update(long).digest('hex').slice(0, 16)}`;
  assert.notEqual(snapshotFileName(mimic), snapshotFileName(long));
  assert.notEqual(snapshotFileName(`${'a'.repeat(150)}.${createHash('sha256').update(long).digest('hex').slice(0, 16)}`), snapshotFileName(long));
});

test('Qdrant version rule: same minor restores, another minor or an unreadable version does not', () => {
  assert.equal(minorVersion('1.16.2'), '1.16');
  assert.equal(minorVersion('v1.16.0-rc1'), '1.16');
  assert.equal(minorVersion('dev'), undefined);
  assert.equal(versionMismatch('1.16.2', '1.16.9'), undefined);
  assert.match(versionMismatch('1.16.2', '1.17.0') ?? '', /same minor version/);
  assert.match(versionMismatch('1.16.2', '2.16.2') ?? '', /1\.16\.2.*2\.16\.2/);
  assert.ok(versionMismatch('dev', 'dev'));
});

test('Qdrant fake honours checksum and priority (the trap our restore must avoid is really there)', async () => {
  const f = await fake({ apiKey: undefined });
  await seed(f, 'c', 5);
  const snap = (await call(f, 'POST', '/collections/c/snapshots?wait=true')) as { name: string; checksum: string };
  const blob = Buffer.from(await (await fetch(`${f.url}/collections/c/snapshots/${snap.name}`)).arrayBuffer());
  const upload = async (name: string, query: string) => {
    const form = new FormData();
    form.append('snapshot', new Blob([blob]), 'c.snapshot');
    return fetch(`${f.url}/collections/${name}/snapshots/upload?${query}`, { method: 'POST', body: form });
  };
  assert.equal((await upload('wrong', `checksum=${'3'.repeat(64)}&priority=snapshot`)).status, 400);
  assert.equal(f.collections.has('wrong'), false);
  assert.equal((await upload('no_priority', `checksum=${snap.checksum}`)).status, 200);
  assert.equal(pointsOf(f, 'no_priority').length, 0, 'without priority=snapshot a new collection comes back empty');
  assert.equal((await upload('with_priority', `checksum=${snap.checksum}&priority=snapshot`)).status, 200);
  assert.equal(pointsOf(f, 'with_priority').length, 5);
  const noWait = await fetch(`${f.url}/collections/c/snapshots?wait=false`, { method: 'POST' });
  assert.equal(noWait.status, 202);
  assert.equal(((await noWait.json()) as { result?: unknown }).result, undefined, 'wait=false answers without a description');
});

test('round trip against the Qdrant fake: backup-all, verify-latest --checksums, restore-all into an empty fake; counts, config and aliases match', async () => {
  const cfg = config('round.yaml', source);
  const set = await backup(cfg);
  const rec = set.manifest.sources.qdrant!;
  assert.equal(rec.serverVersion, '1.16.2');
  assert.deepEqual(rec.counts, { docs: { points: 120 }, [HOSTILE]: { points: 7 } });
  const details = rec.details as { aliases: unknown[]; collections: { name: string; vectors: unknown }[] };
  assert.deepEqual(
    [...details.aliases].sort((a, b) => JSON.stringify(a).localeCompare(JSON.stringify(b))),
    [{ alias_name: 'docs-live', collection_name: 'docs' }, { alias_name: 'odd', collection_name: HOSTILE }],
  );
  assert.deepEqual(details.collections.find((c) => c.name === HOSTILE)?.vectors, { text: { size: 4, distance: 'Dot' } });
  const artifacts = set.manifest.artifacts.filter((a) => a.source === 'qdrant');
  assert.equal(artifacts.length, 2);
  for (const a of artifacts) {
    assert.match(a.path, /^qdrant\/[^/]+\.snapshot$/);
    assert.equal(await sha256File(join(set.dir, a.path)), a.sha256);
  }
  assert.deepEqual(readdirSync(join(set.dir, 'qdrant')).length, 2, 'nothing written outside qdrant/');
  assert.equal(leftSnapshots(source), 0, 'server-side snapshots deleted after the download');
  assert.ok(source.requests.some((r) => r.method === 'POST' && /\/snapshots$/.test(r.path) && r.query.wait === 'true'), 'snapshots created with wait=true');

  const v = await run('verify-latest', ['--config', cfg, '--checksums']);
  assert.equal(v.code, 0, output(v));

  const target = await fake({ version: '1.16.5' });
  const r = await run('restore-all', ['--config', config('round-target.yaml', target), '--yes']);
  assert.equal(r.code, 0, output(r));
  assert.match(r.stdout, /qdrant: counts match the manifest/);
  for (const name of ['docs', HOSTILE]) {
    assert.deepEqual(pointsOf(target, name), pointsOf(source, name), `${name}: every point restored`);
    assert.deepEqual(target.collections.get(name)?.vectors, source.collections.get(name)?.vectors);
  }
  assert.deepEqual(Object.fromEntries(target.aliases), Object.fromEntries(source.aliases));
  const uploads = target.requests.filter((x) => x.path.endsWith('/snapshots/upload'));
  assert.equal(uploads.length, 2);
  for (const u of uploads) {
    assert.equal(u.query.priority, 'snapshot');
    assert.equal(u.query.wait, 'true');
    assert.ok(artifacts.some((a) => a.sha256 === u.query.checksum), 'upload carries the snapshot sha256');
  }
});

test("a Qdrant fake download whose bytes don't match the server checksum fails the backup: exit 1, no set published", async () => {
  const cfg = config('corrupt.yaml', source);
  const setsBefore = (await listCompleteSets(root)).length;
  source.corruptDownloads.add('docs');
  try {
    const b = await run('backup-all', ['--config', cfg]);
    assert.equal(b.code, 1, output(b));
    assert.match(output(b), /qdrant: snapshot docs: download of .* does not match the server's checksum/);
  } finally {
    source.corruptDownloads.clear();
  }
  assert.equal((await listCompleteSets(root)).length, setsBefore, 'no set published');
  assert.deepEqual(existsSync(join(root, '.staging')) ? readdirSync(join(root, '.staging')) : [], [], 'staging removed');
  assert.equal(leftSnapshots(source), 0, 'the server snapshot is deleted even when the download fails');
});

test('a Qdrant fake that never answers a snapshot request fails the backup after sources.qdrant.timeout, naming the setting', async () => {
  const slow = await fake();
  await seed(slow, 'docs', 3);
  slow.stallSnapshots.add('*');
  const b = await run('backup-all', ['--config', config('slow.yaml', slow, ['timeout: 1s'])]);
  assert.equal(b.code, 1, output(b));
  assert.match(output(b), /qdrant: snapshot docs: POST \/collections\/docs\/snapshots: no answer within 1\.0 s \(sources\.qdrant\.timeout\)/);
  assert.equal(existsSync(join(root, '.staging')) ? readdirSync(join(root, '.staging')).length : 0, 0);
});

test('Ctrl-C during a snapshot download: the server snapshot is still deleted; exit 1; no set', async () => {
  const stalled = await fake();
  await seed(stalled, 'docs', 3);
  stalled.stallDownloads.add('*');
  const setsBefore = (await listCompleteSets(root)).length;
  const downloading = () => stalled.requests.some((r) => r.method === 'GET' && /^\/collections\/docs\/snapshots\/./.test(r.path));
  const b = await runScriptProcess('backup-all', ['--config', config('interrupted.yaml', stalled)], { interrupt: { when: downloading, signal: 'SIGINT' } });
  assert.equal(b.code, 1, output(b));
  assert.match(output(b), /SIGINT received: stopping after cleanup/);
  assert.ok(downloading(), 'interrupted during the download');
  assert.equal(leftSnapshots(stalled), 0, 'the server snapshot is deleted after the interrupt too');
  assert.equal((await listCompleteSets(root)).length, setsBefore, 'no set published');
});

test('restore into a Qdrant fake of another minor version exits 5 and touches nothing; --force restores', async () => {
  const set = await backup(config('version.yaml', source));
  const target = await fake({ version: '1.17.0' });
  const cfg = config('version-target.yaml', target);
  const r = await run('restore-all', ['--config', cfg, '--yes', '--from', set.id]);
  assert.equal(r.code, 5, output(r));
  assert.match(output(r), /taken from Qdrant 1\.16\.2, the target runs 1\.17\.0/);
  assert.equal(target.collections.size, 0, 'nothing restored');
  assert.ok(!target.requests.some((x) => x.method !== 'GET' && !x.path.endsWith('/points/count')), 'no write request before the refusal');
  const f = await run('restore-all', ['--config', cfg, '--yes', '--force', '--from', set.id]);
  assert.equal(f.code, 0, output(f));
  assert.equal(pointsOf(target, 'docs').length, 120);
});

test('restore into a non-empty Qdrant fake collection or a taken alias exits 5 without --force; --force replaces', async () => {
  const set = await backup(config('nonempty.yaml', source));
  const target = await fake();
  await seed(target, 'docs', 3);
  await seed(target, 'other', 1);
  await call(target, 'POST', '/collections/aliases', { actions: [{ create_alias: { alias_name: 'docs-live', collection_name: 'other' } }] });
  const cfg = config('nonempty-target.yaml', target);
  const r = await run('restore-all', ['--config', cfg, '--yes', '--from', set.id]);
  assert.equal(r.code, 5, output(r));
  assert.match(output(r), /collection docs is not empty \(3 points\)/);
  assert.match(output(r), /alias docs-live points to collection other/);
  assert.equal(pointsOf(target, 'docs').length, 3, 'left as it was');
  assert.equal(target.collections.has(HOSTILE), false, 'no collection restored before the refusal');
  const f = await run('restore-all', ['--config', cfg, '--yes', '--force', '--from', set.id]);
  assert.equal(f.code, 0, output(f));
  assert.deepEqual(pointsOf(target, 'docs'), pointsOf(source, 'docs'));
  assert.equal(target.aliases.get('docs-live'), 'docs');
  assert.equal(target.aliases.get('odd'), HOSTILE);
});

test('verify-latest --deep against the Qdrant fake restores into scratch collections and leaves none behind', async () => {
  const cfg = config('deep.yaml', source);
  await backup(cfg);
  const collectionsBefore = [...source.collections.keys()].sort();
  const aliasesBefore = Object.fromEntries(source.aliases);
  const mark = source.requests.length;
  const v = await run('verify-latest', ['--config', cfg, '--deep']);
  assert.equal(v.code, 0, output(v));
  assert.match(v.stdout, /qdrant: restore drill counts match the manifest/);
  const uploads = source.requests.slice(mark).filter((x) => x.path.endsWith('/snapshots/upload'));
  assert.equal(uploads.length, 2);
  assert.ok(uploads.every((u) => /^\/collections\/llc_scratch_/.test(u.path)), 'only scratch collections are written');
  assert.ok(!source.requests.slice(mark).some((x) => x.path === '/collections/aliases'), 'aliases untouched by the drill');
  assert.deepEqual([...source.collections.keys()].sort(), collectionsBefore, 'no scratch collection left');
  assert.deepEqual(Object.fromEntries(source.aliases), aliasesBefore);
  assert.equal(pointsOf(source, 'docs').length, 120);
});

test('backup-all --dry-run against the Qdrant fake plans the snapshots and creates none', async () => {
  const mark = source.requests.length;
  const b = await run('backup-all', ['--config', config('dry.yaml', source), '--dry-run']);
  assert.equal(b.code, 0, output(b));
  assert.match(b.stdout, /plan +qdrant: POST \/collections\/docs\/snapshots\?wait=true/);
  assert.ok(source.requests.slice(mark).every((x) => x.method === 'GET'), 'only reads');
});

test('the Qdrant api key is sent but never printed or stored, even with --verbose; a wrong key fails without echoing it', async () => {
  const cfg = config('key.yaml', source);
  const mark = source.requests.length;
  const b = await run('backup-all', ['--config', cfg, '--verbose', '--json']);
  assert.equal(b.code, 0, output(b));
  const set = (await listCompleteSets(root)).find((s) => s.id === (JSON.parse(b.stdout) as { id: string }).id)!;
  const v = await run('verify-latest', ['--config', cfg, '--deep', '--verbose']);
  const r = await run('restore-all', ['--config', cfg, '--dry-run', '--verbose', '--force']);
  for (const x of [b, v, r]) assert.ok(!output(x).includes(KEY), 'key not in output');
  assert.equal(v.code, 0, output(v));
  assert.equal(r.code, 0, output(r));
  assert.ok(!readFileSync(join(set.dir, 'manifest.json'), 'utf8').includes(KEY), 'key not in the manifest');
  const sent = source.requests.slice(mark);
  assert.ok(sent.length > 10 && sent.every((x) => x.authorized), 'every request carried the key');

  const wrong = await run('backup-all', ['--config', config('wrong-key.yaml', source, [], 'WRONG_KEY'), '--verbose']);
  assert.equal(wrong.code, 1, output(wrong));
  assert.match(output(wrong), /qdrant: connect: GET \/: HTTP 401/);
  assert.ok(!output(wrong).includes(`wrong-${KEY.slice(3)}`), 'the wrong key is not echoed either');
});

/** Run a script under GNU time and return its exit code and peak RSS in bytes. */
function runMeasured(script: string, args: string[]): Promise<{ code: number | null; maxRss: number; out: string }> {
  const rssFile = join(dir, `rss-${randomBytes(4).toString('hex')}`);
  return new Promise((resolve, reject) => {
    const child = spawn('/usr/bin/time', ['-f', '%M', '-o', rssFile, process.execPath, '--import', 'tsx', scriptPath(script), ...args], { cwd: ROOT, stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    child.stdout.setEncoding('utf8').on('data', (d: string) => (out += d));
    child.stderr.setEncoding('utf8').on('data', (d: string) => (out += d));
    child.on('error', reject);
    child.on('close', (code) => resolve({ code, maxRss: Number(readFileSync(rssFile, 'utf8').trim().split('\n').at(-1)) * 1024, out }));
  });
}

test('a Qdrant fake snapshot larger than our memory bound is downloaded and uploaded as a stream', { skip: requireTools(['/usr/bin/time']) }, async () => {
  // fetch would hold a whole request body in memory (nodejs/undici#4058): this is the guard for the upload path.
  const big = await fake();
  try {
    const payload = 'x'.repeat(1 << 20);
    const points = new Map<string, { id: number; vector: number[]; payload: { blob: string } }>();
    for (let i = 0; i < 450; i++) points.set(String(i), { id: i, vector: [1, 0, 0, 0], payload: { blob: payload } });
    big.collections.set('big', { vectors: { size: 4, distance: 'Cosine' }, points });
    const bound = 400 * 1024 * 1024;
    const b = await runMeasured('backup-all', ['--config', config('big.yaml', big), '--json']);
    assert.equal(b.code, 0, b.out);
    const id = (JSON.parse(b.out.slice(b.out.indexOf('{'))) as { id: string }).id;
    const set = (await listCompleteSets(root)).find((s) => s.id === id)!;
    const size = set.manifest.artifacts.find((a) => a.source === 'qdrant')!.size;
    assert.ok(size > bound, `the snapshot (${size} bytes) is larger than the bound`);
    assert.ok(b.maxRss < bound, `backup-all peak RSS ${b.maxRss} < ${bound}`);
    big.collections.clear();
    const r = await runMeasured('restore-all', ['--config', config('big-restore.yaml', big), '--yes', '--from', id]);
    assert.equal(r.code, 0, r.out);
    assert.ok(r.maxRss < bound, `restore-all peak RSS ${r.maxRss} < ${bound}`);
    assert.equal(pointsOf(big, 'big').length, 450);
  } finally {
    big.collections.clear();
  }
});

test('collections named __proto__ and constructor (valid in Qdrant) back up, count and restore like any other', async () => {
  const src = await fake();
  await seed(src, '__proto__', 9);
  await seed(src, 'constructor', 3);
  const set = await backup(config('proto.yaml', src));
  const counts = set.manifest.sources.qdrant!.counts;
  assert.ok(Object.hasOwn(counts, '__proto__'), `an own entry: ${JSON.stringify(counts)}`);
  assert.deepEqual(counts['__proto__'], { points: 9 });
  assert.deepEqual(counts.constructor, { points: 3 });
  const dst = await fake({ version: src.version });
  const r = await run('restore-all', ['--config', config('proto-dst.yaml', dst), '--yes', '--from', set.id]);
  assert.equal(r.code, 0, output(r));
  assert.match(r.stdout, /qdrant: counts match the manifest/);
  assert.equal(pointsOf(dst, '__proto__').length, 9);
  assert.equal(pointsOf(dst, 'constructor').length, 3);
});

test('a url with a query, a fragment or credentials is exit 2; a server that lists no collections array is exit 1, no empty set published', async () => {
  const src = await fake();
  for (const [suffix, why] of [['/?tls=off', /has a query string/], ['/#x', /has a fragment/]] as const) {
    const r = await run('backup-all', ['--config', config(`bad-url-${why.source.length}.yaml`, { ...src, url: `${src.url}${suffix}` } as QdrantFake)]);
    assert.equal(r.code, 2, output(r));
    assert.match(output(r), new RegExp(`invalid config: sources\\.qdrant\\.url http://127\\.0\\.0\\.1:\\d+/?: ${why.source}`));
  }
  const creds = await run('backup-all', ['--config', config('creds.yaml', { ...src, url: src.url.replace('http://', 'http://user:pw@') } as QdrantFake)]);
  assert.equal(creds.code, 2, output(creds));
  assert.doesNotMatch(output(creds), /user:pw/);
  // Something that answers 200 with no list (a proxy page, another service): not "no collections".
  const odd = createServer((req, res) => {
    res.writeHead(200, { 'content-type': 'application/json' });
    res.end(req.url === '/' ? JSON.stringify({ title: 'qdrant - vector search engine', version: src.version }) : JSON.stringify({ result: null, status: 'ok' }));
  });
  await new Promise<void>((r) => odd.listen(0, '127.0.0.1', r));
  try {
    const before = (await listCompleteSets(root)).length;
    const r = await run('backup-all', ['--config', config('odd.yaml', { ...src, url: `http://127.0.0.1:${(odd.address() as AddressInfo).port}` } as QdrantFake)]);
    assert.equal(r.code, 1, output(r));
    assert.match(output(r), /GET \/collections: no list of collections in the answer/);
    assert.equal((await listCompleteSets(root)).length, before);
  } finally {
    odd.close();
  }
});

test("a drill's scratch collection left by a killed verify-latest --deep is not backed up with `all`, and is named", async () => {
  const src = await fake();
  await seed(src, 'docs', 5);
  await seed(src, 'llc_scratch_20261124t023000z_a1b2c3_0', 5);
  const set = await backup(config('scratch-left.yaml', src));
  assert.deepEqual(Object.keys(set.manifest.sources.qdrant!.counts), ['docs']);
  const b = await run('backup-all', ['--config', config('scratch-left.yaml', src)]);
  assert.match(output(b), /warn +qdrant: collection llc_scratch_20261124t023000z_a1b2c3_0 is a restore drill's scratch copy left by a run that was killed: not backed up/);
});

test('a snapshot the server made but whose answer was lost (a 504 from a proxy) is deleted, not left to take disk; exit 1; no set', async () => {
  const lossy = await fake();
  await seed(lossy, 'docs', 3);
  lossy.loseSnapshotAnswers.add('*');
  const setsBefore = (await listCompleteSets(root)).length;
  const b = await run('backup-all', ['--config', config('lossy.yaml', lossy)]);
  assert.equal(b.code, 1, output(b));
  assert.match(output(b), /qdrant: snapshot docs: .*504/);
  assert.match(output(b), /deleted server snapshot \S+ of docs, made by the request that failed/);
  assert.equal(leftSnapshots(lossy), 0);
  assert.equal((await listCompleteSets(root)).length, setsBefore);
});
