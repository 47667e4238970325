// The S3 source against a real S3 API server (s3rver, DESIGN.md §10): hostile keys round trip byte-exact with their
// metadata, nothing lands outside the backup root, damaged objects and non-empty targets are caught, incremental
// sets hard-link unchanged objects, and the restore drill leaves no scratch bucket. Scripts run as child processes.
import { test, before, after, describe } from 'node:test';
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { appendFileSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, statSync, writeFileSync, openSync, readSync, writeSync, closeSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, relative, sep } from 'node:path';
import { CreateBucketCommand, DeleteBucketCommand, DeleteObjectCommand, GetObjectCommand, ListBucketsCommand, ListObjectsV2Command, PutObjectCommand, type S3Client } from '@aws-sdk/client-s3';
import { ROOT, runScriptProcess } from './helpers/scripts.ts';
import { s3rverClient, startS3rver, type S3rverHandle } from './helpers/s3rver.ts';
import { checkManifest, listCompleteSets, type CompleteSet } from '../lib/backup-set.ts';
import { createS3Source } from '../lib/sources/s3.ts';
import {
  bucketDirName,
  bucketRestoreStep,
  decodeListedKey,
  isValidBucketName,
  parseIndexLine,
  parseListPage,
  xmlUnescape,
  planParts,
  scratchBucketName,
  showKey,
  unchanged,
  type IndexEntry,
  type S3Details,
} from '../lib/sources/s3-layout.ts';
import { forEachBounded } from '../lib/pool.ts';
import { Output } from '../lib/output.ts';
import { Runner } from '../lib/run.ts';
import type { SourceContext } from '../lib/sources/types.ts';

/** 1000 bytes, multibyte characters included; s3rver keeps keys as file paths, so no segment may pass 255 bytes. */
const LONG_KEY = [...Array.from({ length: 4 }, (_, i) => `${i}-${'é'.repeat(98)}`), 'x'.repeat(196)].join('/');
const HOSTILE_KEYS = ['../escape', 'a b/ü.txt', '$(touch pwned)', LONG_KEY, 'dir', 'dir/file', 'quote"and\'apos', 'plus+and%41'];

let s3: S3rverHandle;
let client: S3Client;
let work: string;

before(async () => {
  work = mkdtempSync(join(tmpdir(), 'llc-s3-test-'));
  s3 = await startS3rver({ dir: join(work, 's3rver') });
  client = s3rverClient(s3);
  writeFileSync(join(work, '.env'), `S3_TEST_ACCESS=${s3.accessKey}\nS3_TEST_SECRET=${s3.secretKey}\n`, { mode: 0o600 });
});

after(async () => {
  client?.destroy();
  await s3?.stop();
  if (work) rmSync(work, { recursive: true, force: true });
});

/** A config of its own (own backup root) for each test; credentials only through .env. */
function config(name: string, s3Extra: string[] = []): { path: string; root: string } {
  const root = join(work, name, 'backups');
  mkdirSync(join(work, name), { recursive: true });
  const path = join(work, `${name}.yaml`);
  writeFileSync(
    path,
    [
      'backup:',
      `  root: ${root}`,
      'sources:',
      '  s3:',
      `    endpoint: ${s3.endpoint}`,
      '    accessKey: ${S3_TEST_ACCESS}',
      '    secretKey: ${S3_TEST_SECRET}',
      ...s3Extra.map((l) => `    ${l}`),
      '',
    ].join('\n'),
  );
  return { path, root };
}

async function put(bucket: string, key: string, body: Buffer | string, opts: { contentType?: string; metadata?: Record<string, string> } = {}) {
  await client.send(new PutObjectCommand({ Bucket: bucket, Key: key, Body: body, ContentType: opts.contentType, Metadata: opts.metadata }));
}

async function createBucket(name: string) {
  await client.send(new CreateBucketCommand({ Bucket: name }));
}

async function getObject(bucket: string, key: string): Promise<{ body: Buffer; contentType?: string; metadata: Record<string, string> }> {
  const r = await client.send(new GetObjectCommand({ Bucket: bucket, Key: key }));
  return { body: Buffer.from(await r.Body!.transformToByteArray()), contentType: r.ContentType, metadata: r.Metadata ?? {} };
}

async function listKeys(bucket: string): Promise<string[]> {
  const keys: string[] = [];
  let token: string | undefined;
  do {
    const r = await client.send(new ListObjectsV2Command({ Bucket: bucket, ContinuationToken: token }));
    keys.push(...(r.Contents ?? []).map((o) => o.Key!));
    token = r.IsTruncated ? r.NextContinuationToken : undefined;
  } while (token);
  return keys.sort();
}

async function bucketNames(): Promise<string[]> {
  return ((await client.send(new ListBucketsCommand({}))).Buckets ?? []).map((b) => b.Name!).sort();
}

/** Every file and directory under dir, relative to it. */
function tree(dir: string): string[] {
  const out: string[] = [];
  const walk = (d: string) => {
    for (const e of readdirSync(d, { withFileTypes: true })) {
      const p = join(d, e.name);
      out.push(relative(dir, p));
      if (e.isDirectory()) walk(p);
    }
  };
  walk(dir);
  return out;
}

async function newestSet(root: string): Promise<CompleteSet> {
  const set = (await listCompleteSets(root)).at(-1);
  assert.ok(set, `a complete set under ${root}`);
  return set;
}

function indexOf(set: CompleteSet, bucket: string): IndexEntry[] {
  const d = set.manifest.sources.s3!.details as unknown as S3Details;
  const b = d.buckets.find((x) => x.name === bucket)!;
  return readFileSync(join(set.dir, b.index), 'utf8').split('\n').filter(Boolean).map((l, i) => parseIndexLine(l, `line ${i + 1}`));
}

const out = (r: { stdout: string; stderr: string }) => r.stdout + r.stderr;

describe('s3 source against s3rver', () => {
  test('hostile keys round trip byte-exact with content type and metadata; nothing written outside the backup root', async () => {
    const { path, root } = config('roundtrip', ['buckets: [hostile, empty-bucket]', 'restoreInto: { hostile: hostile-restored, empty-bucket: empty-restored }']);
    await createBucket('hostile');
    await createBucket('empty-bucket');
    const objects = new Map<string, { body: Buffer; contentType: string; metadata: Record<string, string> }>();
    for (const [i, key] of HOSTILE_KEYS.entries()) {
      const o = { body: randomBytes(100 + i * 37), contentType: i % 2 ? 'application/x-llc-test' : 'text/plain; charset=utf-8', metadata: { 'llc-index': String(i), 'with-space': 'a b c' } };
      objects.set(key, o);
      await put('hostile', key, o.body, o);
    }
    // An empty object, and two keys with the same bytes (stored once in the set).
    objects.set('empty', { body: Buffer.alloc(0), contentType: 'application/octet-stream', metadata: {} });
    await put('hostile', 'empty', Buffer.alloc(0), { contentType: 'application/octet-stream' });
    const same = randomBytes(64);
    for (const k of ['same/1', 'same/2']) {
      objects.set(k, { body: same, contentType: 'application/octet-stream', metadata: { twin: k } });
      await put('hostile', k, same, { contentType: 'application/octet-stream', metadata: { twin: k } });
    }

    const before = new Set(tree(work));
    const b = await runScriptProcess('backup-all', ['--config', path, '--json', '--verbose'], { cwd: work });
    assert.equal(b.code, 0, out(b));
    const doc = JSON.parse(b.stdout) as { id: string };
    const set = await newestSet(root);
    assert.equal(set.id, doc.id);
    assert.deepEqual(checkManifest(set.manifest), []);
    assert.deepEqual(set.manifest.sources.s3!.counts, {
      hostile: { objects: objects.size, bytes: [...objects.values()].reduce((a, o) => a + o.body.length, 0) },
      'empty-bucket': { objects: 0, bytes: 0 },
    });
    assert.equal(set.manifest.sources.s3!.serverVersion, 'unknown', 's3rver sends no Server header');
    // The manifest lists the index files, not every object.
    assert.deepEqual(set.manifest.artifacts.map((a) => a.path).sort(), ['s3/empty-bucket/index.jsonl', 's3/hostile/index.jsonl']);
    const entries = indexOf(set, 'hostile');
    assert.deepEqual(entries.map((e) => e.key).sort(), [...objects.keys()].sort());
    const sha = (b: Buffer) => createHash('sha256').update(b).digest('hex');
    for (const e of entries) assert.equal(e.sha256, sha(objects.get(e.key)!.body), `sha256 of ${e.key}`);
    // Files are named by content only: no key, no part of one, in any path of the set.
    for (const p of tree(set.dir)) {
      assert.match(p, /^(manifest\.json|s3|s3\/(hostile|empty-bucket)(\/index\.jsonl|\/objects(\/[0-9a-f]{2}(\/[0-9a-f]{64})?)?)?)$/, `unexpected path in the set: ${p}`);
      const st = statSync(join(set.dir, p));
      assert.equal(st.mode & 0o777, st.isDirectory() ? 0o700 : 0o600, `${p} mode`);
    }
    assert.equal(new Set(entries.filter((e) => e.key.startsWith('same/')).map((e) => e.file)).size, 1, 'equal content stored once');

    const v = await runScriptProcess('verify-latest', ['--config', path, '--checksums'], { cwd: work });
    assert.equal(v.code, 0, out(v));
    const r = await runScriptProcess('restore-all', ['--config', path, '--yes'], { cwd: work });
    assert.equal(r.code, 0, out(r));
    assert.match(r.stdout, /s3: counts match the manifest/);
    assert.deepEqual(await listKeys('hostile-restored'), [...objects.keys()].sort());
    assert.deepEqual(await listKeys('empty-restored'), []);
    for (const [key, o] of objects) {
      const got = await getObject('hostile-restored', key);
      assert.ok(got.body.equals(o.body), `bytes of ${showKey(key)}`);
      assert.equal(got.contentType, o.contentType, `content type of ${showKey(key)}`);
      assert.deepEqual(got.metadata, o.metadata, `metadata of ${showKey(key)}`);
    }

    // Everything new in the test's temp area is in the backup root or in s3rver's own storage; no shell ran a key.
    const added = tree(work).filter((p) => !before.has(p));
    const stray = added.filter((p) => !p.startsWith(`roundtrip${sep}backups`) && !p.startsWith(`s3rver${sep}`));
    assert.deepEqual(stray, []);
    assert.ok(added.some((p) => p.startsWith(`roundtrip${sep}backups${sep}`)), 'the snapshot saw the set being written');
    for (const dir of [work, ROOT, tmpdir()]) assert.ok(!readdirSync(dir).includes('pwned') && !readdirSync(dir).includes('escape'), `no stray file in ${dir}`);
    for (const text of [out(b), out(v), out(r), readFileSync(join(set.dir, 'manifest.json'), 'utf8')]) {
      assert.ok(!text.includes(s3.secretKey) && !text.includes(s3.accessKey), 'credentials never printed or stored');
    }
  });

  test('a flipped byte in an object file: verify-latest --checksums exits 4 naming bucket and key', async () => {
    const { path, root } = config('flip', ['buckets: [flip-bucket]']);
    await createBucket('flip-bucket');
    await put('flip-bucket', 'docs/report one.pdf', randomBytes(5000));
    await put('flip-bucket', 'other', randomBytes(300));
    const b = await runScriptProcess('backup-all', ['--config', path], { cwd: work });
    assert.equal(b.code, 0, out(b));
    const set = await newestSet(root);
    const victim = indexOf(set, 'flip-bucket').find((e) => e.key === 'docs/report one.pdf')!;
    const fd = openSync(join(set.dir, victim.file), 'r+');
    const one = Buffer.alloc(1);
    readSync(fd, one, 0, 1, 2500);
    writeSync(fd, Buffer.from([one[0]! ^ 0xff]), 0, 1, 2500);
    closeSync(fd);
    const quick = await runScriptProcess('verify-latest', ['--config', path], { cwd: work });
    assert.equal(quick.code, 0, `same size: the quick level cannot see it\n${out(quick)}`);
    const v = await runScriptProcess('verify-latest', ['--config', path, '--checksums'], { cwd: work });
    assert.equal(v.code, 4, out(v));
    assert.match(out(v), /bucket flip-bucket key "docs\/report one\.pdf": .*sha256/);
    assert.doesNotMatch(out(v), /key "other"/);
    const r = await runScriptProcess('restore-all', ['--config', path, '--yes', '--force'], { cwd: work });
    assert.equal(r.code, 4, `restore refuses a damaged set before touching the bucket\n${out(r)}`);
  });

  test('shared files: every index entry is judged by its own size and sha256; quick finds missing object files; a file changed since its set is not linked again', async () => {
    const { path, root } = config('shared', ['buckets: [shared-bucket]']);
    await createBucket('shared-bucket');
    await put('shared-bucket', 'dup1', 'same bytes');
    await put('shared-bucket', 'dup2', 'same bytes');
    await put('shared-bucket', 'solo', randomBytes(2000));
    const b = await runScriptProcess('backup-all', ['--config', path], { cwd: work });
    assert.equal(b.code, 0, out(b));
    const set = await newestSet(root);
    const entries = indexOf(set, 'shared-bucket');
    assert.equal(entries.find((e) => e.key === 'dup1')!.file, entries.find((e) => e.key === 'dup2')!.file, 'one file for both keys');
    const indexPath = join(set.dir, 's3/shared-bucket/index.jsonl');
    const original = readFileSync(indexPath, 'utf8');
    const manifestPath = join(set.dir, 'manifest.json');
    const originalManifest = readFileSync(manifestPath, 'utf8');
    // The second entry of the shared file claims another sha256 (index re-hashed into the manifest): caught, and only it.
    const tampered = original.split('\n').map((l) => (l.includes('"key":"dup2"') ? l.replace(/"sha256":"[0-9a-f]{64}"/, `"sha256":"${'0'.repeat(64)}"`) : l)).join('\n');
    writeFileSync(indexPath, tampered);
    const m = JSON.parse(originalManifest) as { artifacts: { path: string; sha256: string; size: number }[] };
    const a = m.artifacts.find((x) => x.path === 's3/shared-bucket/index.jsonl')!;
    a.sha256 = createHash('sha256').update(tampered).digest('hex');
    a.size = Buffer.byteLength(tampered);
    writeFileSync(manifestPath, JSON.stringify(m));
    const v = await runScriptProcess('verify-latest', ['--config', path, '--checksums'], { cwd: work });
    assert.equal(v.code, 4, out(v));
    assert.match(out(v), /key "dup2": .*does not match the index's 0{64}/);
    assert.doesNotMatch(out(v), /key "dup1"/);
    assert.match(out(v), /error +s3: every object of bucket shared-bucket against its index failed: 1 problem \(/, 'the step does not say ok');
    // The quick level too judges each entry of a shared file by its own size.
    const bigger = original.split('\n').map((l) => (l.includes('"key":"dup2"') ? l.replace(/"size":\d+/, '"size":11') : l)).join('\n');
    writeFileSync(indexPath, bigger);
    a.sha256 = createHash('sha256').update(bigger).digest('hex');
    a.size = Buffer.byteLength(bigger);
    writeFileSync(manifestPath, JSON.stringify(m));
    const q = await runScriptProcess('verify-latest', ['--config', path], { cwd: work });
    assert.equal(q.code, 4, out(q));
    assert.match(out(q), /key "dup2": .*size 10 bytes, index says 11/);
    assert.doesNotMatch(out(q), /key "dup1"/);
    assert.match(out(q), /error +s3: what the artifacts list is present with recorded sizes failed: 1 missing or of another size/);
    writeFileSync(indexPath, original);
    writeFileSync(manifestPath, originalManifest);
    // A missing object file: the quick level sees it (it only looks at names and sizes).
    const solo = entries.find((e) => e.key === 'solo')!;
    const soloPath = join(set.dir, solo.file);
    const soloBytes = readFileSync(soloPath);
    rmSync(soloPath);
    const quick = await runScriptProcess('verify-latest', ['--config', path], { cwd: work });
    assert.equal(quick.code, 4, out(quick));
    assert.match(out(quick), /key "solo": .* missing/);
    // Put back with other bytes of the same size (a file changed after its set was finished): the next backup
    // downloads that object again instead of linking the damage into the new set.
    writeFileSync(soloPath, Buffer.alloc(soloBytes.length, 7));
    const next = await runScriptProcess('backup-all', ['--config', path], { cwd: work });
    assert.equal(next.code, 0, out(next));
    const d = (await newestSet(root)).manifest.sources.s3!.details as unknown as S3Details;
    assert.deepEqual({ linked: d.buckets[0]!.linked, downloaded: d.buckets[0]!.downloaded }, { linked: 2, downloaded: 1 });
    const ok = await runScriptProcess('verify-latest', ['--config', path, '--checksums'], { cwd: work });
    assert.equal(ok.code, 0, out(ok));
  });

  test('buckets: all leaves out a scratch bucket a killed restore drill left behind, and says so', async () => {
    const { path, root } = config('all-buckets', ['buckets: all']);
    await createBucket('llc-scratch-20261124t233218z-fcf349-0');
    await put('llc-scratch-20261124t233218z-fcf349-0', 'half', 'restored halfway');
    const b = await runScriptProcess('backup-all', ['--config', path], { cwd: work });
    assert.equal(b.code, 0, out(b));
    assert.match(out(b), /bucket llc-scratch-20261124t233218z-fcf349-0 is a restore drill's scratch copy left by a run that was killed: not backed up/);
    const d = (await newestSet(root)).manifest.sources.s3!.details as unknown as S3Details;
    assert.ok(d.buckets.length > 0 && !d.buckets.some((x) => x.name.startsWith('llc-scratch-')));
    await client.send(new DeleteObjectCommand({ Bucket: 'llc-scratch-20261124t233218z-fcf349-0', Key: 'half' }));
    await client.send(new DeleteBucketCommand({ Bucket: 'llc-scratch-20261124t233218z-fcf349-0' }));
  });

  test('restore into a non-empty bucket: exit 5 without --force; --force makes it exactly the backup', async () => {
    const { path } = config('force', ['buckets: [force-src]', 'restoreInto: { force-src: force-dst }']);
    await createBucket('force-src');
    const backedUp = new Map([['keep/a', randomBytes(200)], ['keep/b', randomBytes(300)], ['changed', randomBytes(50)]]);
    for (const [k, body] of backedUp) await put('force-src', k, body, { metadata: { origin: 'backup' } });
    const b = await runScriptProcess('backup-all', ['--config', path], { cwd: work });
    assert.equal(b.code, 0, out(b));

    await createBucket('force-dst');
    await put('force-dst', 'changed', 'newer bytes that the backup does not hold');
    await put('force-dst', 'extra/one', 'not in the backup');
    await put('force-dst', 'extra two', 'not in the backup either');
    const refused = await runScriptProcess('restore-all', ['--config', path, '--yes'], { cwd: work });
    assert.equal(refused.code, 5, out(refused));
    assert.match(out(refused), /bucket force-dst is not empty \(3 objects\): pass --force/);
    assert.deepEqual(await listKeys('force-dst'), ['changed', 'extra two', 'extra/one'], 'a refused restore changes nothing');

    const plan = await runScriptProcess('restore-all', ['--config', path, '--force', '--dry-run'], { cwd: work });
    assert.equal(plan.code, 0, out(plan));
    // Listing order is the store's: either order of the two names.
    assert.match(plan.stdout, /then delete 2 objects the backup does not hold: ("extra two", "extra\/one"|"extra\/one", "extra two")\n/);
    assert.deepEqual(await listKeys('force-dst'), ['changed', 'extra two', 'extra/one'], 'dry run changes nothing');

    const forced = await runScriptProcess('restore-all', ['--config', path, '--force', '--yes'], { cwd: work });
    assert.equal(forced.code, 0, out(forced));
    assert.deepEqual(await listKeys('force-dst'), [...backedUp.keys()].sort());
    for (const [k, body] of backedUp) {
      const got = await getObject('force-dst', k);
      assert.ok(got.body.equals(body), `bytes of ${k}`);
      assert.deepEqual(got.metadata, { origin: 'backup' });
    }
  });

  test('incremental: unchanged objects are hard-linked (same inode), changed ones downloaded; each set stands alone', async () => {
    const { path, root } = config('incr', ['buckets: [incr-bucket]', 'concurrency: 4']);
    await createBucket('incr-bucket');
    for (let i = 0; i < 30; i++) await put('incr-bucket', `obj/${String(i).padStart(2, '0')}`, randomBytes(1000 + i));
    const first = await runScriptProcess('backup-all', ['--config', path], { cwd: work });
    assert.equal(first.code, 0, out(first));
    const set1 = await newestSet(root);

    // S3 LastModified has one-second resolution: let the changed object get a new time as a real store would.
    await new Promise((r) => setTimeout(r, 1100));
    const changed = randomBytes(777);
    await put('incr-bucket', 'obj/05', changed);
    await put('incr-bucket', 'obj/new', 'added after the first set');
    await client.send(new DeleteObjectCommand({ Bucket: 'incr-bucket', Key: 'obj/07' }));
    const second = await runScriptProcess('backup-all', ['--config', path, '--json'], { cwd: work });
    assert.equal(second.code, 0, out(second));
    const set2 = await newestSet(root);
    assert.notEqual(set2.id, set1.id);
    const one = new Map(indexOf(set1, 'incr-bucket').map((e) => [e.key, e]));
    const two = indexOf(set2, 'incr-bucket');
    assert.deepEqual(two.map((e) => e.key).sort(), [...[...one.keys()].filter((k) => k !== 'obj/07'), 'obj/new'].sort());
    let linked = 0;
    for (const e of two) {
      const ino2 = statSync(join(set2.dir, e.file)).ino;
      const prev = one.get(e.key);
      if (e.key === 'obj/05' || e.key === 'obj/new') {
        assert.notEqual(e.sha256, prev?.sha256, `${e.key} has new content`);
        assert.ok(!prev || ino2 !== statSync(join(set1.dir, prev.file)).ino, `${e.key} downloaded, not linked`);
        continue;
      }
      assert.equal(ino2, statSync(join(set1.dir, prev!.file)).ino, `${e.key} is the same inode as in the previous set`);
      linked++;
    }
    assert.equal(linked, 28);
    const details = set2.manifest.sources.s3!.details as unknown as S3Details;
    assert.deepEqual({ linked: details.buckets[0]!.linked, downloaded: details.buckets[0]!.downloaded }, { linked: 28, downloaded: 2 });
    assert.ok(createHash('sha256').update(changed).digest('hex') === two.find((e) => e.key === 'obj/05')!.sha256);

    // The second set is complete without the first.
    rmSync(set1.dir, { recursive: true });
    const v = await runScriptProcess('verify-latest', ['--config', path, '--checksums'], { cwd: work });
    assert.equal(v.code, 0, out(v));

    // A previous index that no longer matches its manifest is not trusted: everything is downloaded again.
    appendFileSync(join(set2.dir, 's3/incr-bucket/index.jsonl'), '\n');
    const third = await runScriptProcess('backup-all', ['--config', path], { cwd: work });
    assert.equal(third.code, 0, out(third));
    assert.match(out(third), /index of bucket incr-bucket in set \S+ does not match its manifest: downloading every object again/);
    const set3 = await newestSet(root);
    const d3 = set3.manifest.sources.s3!.details as unknown as S3Details;
    assert.deepEqual({ linked: d3.buckets[0]!.linked, downloaded: d3.buckets[0]!.downloaded }, { linked: 0, downloaded: 30 });
  });

  test('verify-latest --deep restores into scratch buckets, compares counts and leaves no scratch bucket', async () => {
    const { path } = config('deep', ['buckets: [deep-bucket]']);
    await createBucket('deep-bucket');
    for (let i = 0; i < 12; i++) await put('deep-bucket', `k${i}`, randomBytes(64 * (i + 1)));
    const b = await runScriptProcess('backup-all', ['--config', path], { cwd: work });
    assert.equal(b.code, 0, out(b));
    const buckets = await bucketNames();
    const v = await runScriptProcess('verify-latest', ['--config', path, '--deep'], { cwd: work });
    assert.equal(v.code, 0, out(v));
    assert.match(v.stdout, /restore bucket deep-bucket into llc-scratch-[0-9a-z-]+-0/);
    assert.match(v.stdout, /s3: restore drill counts match the manifest/);
    assert.deepEqual(await bucketNames(), buckets, 'no scratch bucket left, no live bucket touched');
    assert.equal((await listKeys('deep-bucket')).length, 12);
  });

  // s3rver does not check SigV4 signatures, so a wrong secret goes unnoticed here; an unknown access key does not.
  test('a configured bucket that does not exist: exit 1 naming it before any object is downloaded, no set', async () => {
    const { path, root } = config('missing', ['buckets: [present-bucket, no-such-bucket]']);
    await createBucket('present-bucket');
    await put('present-bucket', 'a', 'x');
    const b = await runScriptProcess('backup-all', ['--config', path], { cwd: work });
    assert.equal(b.code, 1, out(b));
    assert.match(out(b), /s3: list buckets: bucket no-such-bucket does not exist at /);
    assert.doesNotMatch(out(b), /s3: bucket present-bucket/, 'the bucket before it was not backed up first');
    assert.deepEqual(await listCompleteSets(root), []);
  });

  test('unknown access key: backup fails naming the source and step, exit 1, no set, credentials not printed', async () => {
    const { path, root } = config('badcreds', ['buckets: [deep-bucket]']);
    const bad = `WRONG${randomBytes(8).toString('hex').toUpperCase()}`;
    const b = await runScriptProcess('backup-all', ['--config', path, '--verbose'], { cwd: work, env: { S3_TEST_ACCESS: bad } });
    assert.equal(b.code, 1, out(b));
    assert.match(out(b), /s3: list buckets: InvalidAccessKeyId: .* \(HTTP 403\): check sources\.s3\.accessKey/);
    assert.ok(!out(b).includes(bad) && !out(b).includes(s3.secretKey));
    assert.deepEqual(await listCompleteSets(root), []);
  });

  test('multipart restore above the threshold (in-process, small parts) is byte-exact', async () => {
    const { path, root } = config('multipart', ['buckets: [mp-bucket]']);
    await createBucket('mp-bucket');
    const big = randomBytes(12 * 2 ** 20 + 12345);
    await put('mp-bucket', 'big/object.bin', big, { contentType: 'application/x-big', metadata: { part: 'yes' } });
    await put('mp-bucket', 'small', 'small stays a PutObject');
    const b = await runScriptProcess('backup-all', ['--config', path], { cwd: work });
    assert.equal(b.code, 0, out(b));
    const set = await newestSet(root);
    const cfg = { endpoint: s3.endpoint, accessKey: s3.accessKey, secretKey: s3.secretKey, buckets: ['mp-bucket'] };
    const source = createS3Source(cfg, { multipartAbove: 2 ** 20, partSize: 5 * 2 ** 20 });
    const sink = { text: '', write(s: string) { this.text += s; return true; } };
    const o = new Output({ stdout: sink as unknown as NodeJS.WritableStream, env: {} });
    const ctx: SourceContext = { runner: new Runner({ out: o }), out: o, config: {}, signal: new AbortController().signal };
    const plan = await source.planRestore(ctx, set.dir, set.manifest, { force: false, scratch: 'mp_test' });
    try {
      await source.restore(ctx, set.dir, set.manifest, plan, { force: false, scratch: 'mp_test' });
      assert.deepEqual(await source.countRestored(ctx, plan), set.manifest.sources.s3!.counts);
      const target = scratchBucketName('mp_test', 0);
      const got = await getObject(target, 'big/object.bin');
      assert.ok(got.body.equals(big), 'multipart upload is byte-exact');
      assert.equal(got.contentType, 'application/x-big');
      assert.deepEqual(got.metadata, { part: 'yes' });
    } finally {
      await source.cleanup(ctx, plan);
    }
    assert.ok(!(await bucketNames()).includes(scratchBucketName('mp_test', 0)));
  });
});

describe('s3 layout (pure)', () => {
  test('bucket directory names never mean a path', () => {
    assert.equal(bucketDirName('my-bucket.v2'), 'my-bucket%2Ev2');
    assert.equal(bucketDirName('..'), '%2E%2E');
    assert.equal(bucketDirName('a/b'), 'a%2Fb');
    assert.match(bucketDirName('x'.repeat(300)), /^bucket-[0-9a-f]{40}$/);
  });

  test('listed keys are decoded only when the store applied encoding-type=url', () => {
    assert.equal(decodeListedKey('a+b%2Bc%0D%0A%2E%2E%2Fx', 'url'), 'a b+c\r\n../x');
    assert.equal(decodeListedKey('plus+and%41', undefined), 'plus+and%41');
  });

  test('ListObjectsV2 pages: keys decoded as the store says, entities unescaped, dates as the index records them', () => {
    const xml = `<?xml version="1.0" encoding="UTF-8"?>
<ListBucketResult xmlns="http://s3.amazonaws.com/doc/2006-03-01/"><Name>b</Name><Prefix></Prefix><KeyCount>3</KeyCount><MaxKeys>1000</MaxKeys><EncodingType>url</EncodingType><IsTruncated>true</IsTruncated>
<Contents><Key>a+b%2Fc%3C%26%3E</Key><LastModified>2026-11-24T18:46:34Z</LastModified><ETag>&quot;d41d8cd98f00b204e9800998ecf8427e&quot;</ETag><Size>0</Size><StorageClass>STANDARD</StorageClass></Contents>
<Contents><Key>%24%28touch%20pwned%29</Key><LastModified>2026-11-24T18:46:34.123Z</LastModified><ETag>"abc-2"</ETag><Size>1048577</Size><Owner><ID>x</ID></Owner></Contents>
<Contents><Key>dir%2F</Key><LastModified>Tue, 24 Nov 2026 18:46:34 GMT</LastModified><ETag>&#34;e&#x22;</ETag><Size>7</Size></Contents>
<NextContinuationToken>tok+en/=&amp;x</NextContinuationToken></ListBucketResult>`;
    const page = parseListPage(xml);
    assert.deepEqual(page.objects, [
      { key: 'a b/c<&>', size: 0, etag: '"d41d8cd98f00b204e9800998ecf8427e"', lastModified: '2026-11-24T18:46:34.000Z' },
      { key: '$(touch pwned)', size: 1048577, etag: '"abc-2"', lastModified: '2026-11-24T18:46:34.123Z' },
      { key: 'dir/', size: 7, etag: '"e"', lastModified: '2026-11-24T18:46:34.000Z' },
    ]);
    assert.equal(page.truncated, true);
    assert.equal(page.token, 'tok+en/=&x');
    // A store that ignored encoding-type: raw keys, escaped only as XML, never percent-decoded.
    const raw = parseListPage('<ListBucketResult><IsTruncated>false</IsTruncated><Contents><Key>100%41 &amp; more</Key><Size>1</Size><ETag>"e"</ETag></Contents></ListBucketResult>');
    assert.deepEqual(raw, { objects: [{ key: '100%41 & more', size: 1, etag: '"e"', lastModified: '' }], truncated: false });
    assert.deepEqual(parseListPage('<ListBucketResult><KeyCount>0</KeyCount><IsTruncated>false</IsTruncated></ListBucketResult>'), { objects: [], truncated: false });
    assert.throws(() => parseListPage('<Error><Code>AccessDenied</Code></Error>'), /not a ListBucketResult/);
    assert.throws(() => parseListPage('<ListBucketResult><Contents><Key>a</Key>'), /not closed/);
    assert.equal(xmlUnescape('&lt;&#65;&#x42;&amp;amp;&bogus;'), '<AB&amp;&bogus;');
  });

  test('scratch bucket names are valid S3 names for any tag', () => {
    for (const tag of ['20261124t023000z_a1b2c3', 'MP_Test', `${'x'.repeat(80)}_ff`, '___']) {
      for (const i of [0, 3, 12]) {
        const n = scratchBucketName(tag, i);
        assert.ok(isValidBucketName(n), `${n} from ${tag}`);
        assert.ok(n.startsWith('llc-scratch-'));
      }
    }
    assert.notEqual(scratchBucketName('t', 0), scratchBucketName('t', 1));
  });

  test('multipart parts cover the object exactly, at most 10,000 of them', () => {
    for (const [size, part] of [[12 * 2 ** 20 + 5, 5 * 2 ** 20], [5 * 2 ** 20, 5 * 2 ** 20], [2 ** 40, 64 * 2 ** 20]] as const) {
      const parts = planParts(size, part);
      assert.ok(parts.length <= 10_000);
      assert.equal(parts[0]!.start, 0);
      assert.equal(parts.at(-1)!.end, size - 1);
      for (let i = 1; i < parts.length; i++) assert.equal(parts[i]!.start, parts[i - 1]!.end + 1);
      assert.deepEqual(parts.map((p) => p.partNumber), parts.map((_, i) => i + 1));
    }
  });

  test('restore decisions: new, empty, non-empty without and with --force, scratch', () => {
    const base = { bucket: 'b', target: 't', exists: true, present: 0, presentMore: false, extras: [], objects: 3, bytes: 30 };
    assert.match(bucketRestoreStep({ ...base, exists: false }, { force: false, scratch: false }).step, /^create bucket t/);
    assert.match(bucketRestoreStep(base, { force: false, scratch: false }).step, /existing empty bucket t/);
    assert.match(bucketRestoreStep({ ...base, present: 1000, presentMore: true }, { force: false, scratch: false }).refusal!, /not empty \(1000\+ objects\)/);
    assert.match(bucketRestoreStep({ ...base, present: 2 }, { force: true, scratch: true }).refusal!, /scratch bucket t already exists/);
    const many = Array.from({ length: 25 }, (_, i) => `k\n${i}`);
    const r = bucketRestoreStep({ ...base, present: 25, extras: many }, { force: true, scratch: false });
    assert.equal(r.refusal, undefined);
    assert.match(r.step, /delete 25 objects .*"k\\n0".* and 5 more$/);
  });

  test('unchanged needs the same size, ETag and LastModified', () => {
    const p = { size: 5, etag: '"abc"', lastModified: '2026-01-01T00:00:00.000Z' };
    assert.ok(unchanged(p, { key: 'k', ...p }));
    assert.ok(!unchanged(p, { key: 'k', ...p, size: 6 }));
    assert.ok(!unchanged(p, { key: 'k', ...p, etag: '"abd"' }));
    assert.ok(!unchanged(p, { key: 'k', ...p, lastModified: '2026-01-01T00:00:01.000Z' }));
    assert.ok(!unchanged({ ...p, etag: '' }, { key: 'k', ...p, etag: '' }));
  });

  test('index lines are checked', () => {
    const good = { key: 'k', size: 1, etag: '"e"', lastModified: 't', sha256: 'a'.repeat(64), metadata: {}, file: 's3/b/objects/aa/x' };
    assert.deepEqual(parseIndexLine(JSON.stringify(good), 'l1'), good);
    assert.throws(() => parseIndexLine('{', 'l2'), /l2: not JSON/);
    assert.throws(() => parseIndexLine(JSON.stringify({ ...good, size: -1 }), 'l3'), /l3: not an index entry/);
    assert.throws(() => parseIndexLine(JSON.stringify({ ...good, metadata: { a: 1 } }), 'l4'), /not an index entry/);
    assert.throws(() => parseIndexLine(JSON.stringify({ ...good, sha256: 'xyz' }), 'l5'), /not an index entry/);
  });

  test('forEachBounded keeps at most `limit` running and stops at the first failure', async () => {
    let running = 0;
    let peak = 0;
    const seen: number[] = [];
    async function* items() {
      for (let i = 0; i < 50; i++) yield i;
    }
    await forEachBounded(items(), 4, async (i) => {
      running++;
      peak = Math.max(peak, running);
      await new Promise((r) => setImmediate(r));
      seen.push(i);
      running--;
    });
    assert.equal(peak, 4);
    assert.deepEqual(seen.sort((a, b) => a - b), Array.from({ length: 50 }, (_, i) => i));
    let started = 0;
    await assert.rejects(
      forEachBounded(Array.from({ length: 100 }, (_, i) => i), 3, async (i) => {
        started++;
        await new Promise((r) => setImmediate(r));
        if (i === 5) throw new Error('boom 5');
      }),
      /boom 5/,
    );
    assert.ok(started < 100, 'no new work after the failure');
  });
});
