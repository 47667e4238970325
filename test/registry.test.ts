// check-pinning --resolve / --write against a real registry: Debian's docker-registry (distribution 2.8) on 127.0.0.1
// with its own minimal config (filesystem storage, no auth), images pushed by the test over the registry HTTP API.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { createHash } from 'node:crypto';
import { createServer, type Server } from 'node:http';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { gzipSync } from 'node:zlib';
import { freePort } from '../lib/pg-sandbox.ts';
import { parseImageRef } from '../lib/image-ref.ts';
import { MANIFEST_MEDIA_TYPES, RegistryClient, parseBearerChallenge } from '../lib/registry.ts';
import { requireTools } from './helpers/tools.ts';
import { runScriptProcess, type ScriptRun } from './helpers/scripts.ts';

const REGISTRY_BIN = '/usr/bin/docker-registry';
const skip = requireTools([REGISTRY_BIN]);

const sha256 = (b: Buffer | string) => `sha256:${createHash('sha256').update(b).digest('hex')}`;

let dir = '';
let registry: ChildProcess | undefined;
let base = '';
let port = 0;
let registryLog = '';
const pushed: Record<string, string> = {};

async function waitForRegistry(url: string): Promise<void> {
  for (let i = 0; i < 200; i++) {
    if (registry?.exitCode !== null && registry?.exitCode !== undefined) throw new Error(`docker-registry exited ${registry.exitCode}: ${registryLog}`);
    try {
      const res = await fetch(`${url}/v2/`);
      if (res.status === 200) return;
    } catch {
      // not listening yet
    }
    await new Promise((r) => setTimeout(r, 50));
  }
  throw new Error(`docker-registry did not answer on ${url}: ${registryLog}`);
}

async function pushBlob(repo: string, data: Buffer): Promise<{ digest: string; size: number }> {
  const digest = sha256(data);
  const start = await fetch(`${base}/v2/${repo}/blobs/uploads/`, { method: 'POST' });
  assert.equal(start.status, 202, `upload start: ${await start.text()}`);
  const location = new URL(start.headers.get('location')!, base);
  // The Location already carries a query (_state=...): the digest is appended to it (DESIGN.md §10).
  location.searchParams.append('digest', digest);
  const put = await fetch(location, { method: 'PUT', body: data, headers: { 'content-type': 'application/octet-stream' } });
  assert.equal(put.status, 201, `blob PUT: ${await put.text()}`);
  return { digest, size: data.length };
}

async function pushManifest(repo: string, tag: string, mediaType: string, manifest: unknown): Promise<string> {
  const body = Buffer.from(JSON.stringify(manifest));
  const res = await fetch(`${base}/v2/${repo}/manifests/${tag}`, { method: 'PUT', body, headers: { 'content-type': mediaType } });
  assert.equal(res.status, 201, `manifest PUT ${tag}: ${await res.text()}`);
  const digest = res.headers.get('docker-content-digest');
  assert.equal(digest, sha256(body), 'the registry names the manifest by the sha256 of the bytes we sent');
  return digest!;
}

/** A small image: a config blob and one layer blob (the registry stores layers without reading them). */
async function pushImage(repo: string, tag: string, kind: 'docker' | 'oci', label: string): Promise<{ digest: string; size: number; mediaType: string }> {
  const raw = Buffer.from(`layer content ${label}\n`);
  const layer = await pushBlob(repo, gzipSync(raw));
  const configJson = { architecture: 'amd64', os: 'linux', config: { Labels: { test: label } }, rootfs: { type: 'layers', diff_ids: [sha256(raw)] } };
  const config = await pushBlob(repo, Buffer.from(JSON.stringify(configJson)));
  const mediaType = kind === 'docker' ? 'application/vnd.docker.distribution.manifest.v2+json' : 'application/vnd.oci.image.manifest.v1+json';
  const manifest = {
    schemaVersion: 2,
    mediaType,
    config: { mediaType: kind === 'docker' ? 'application/vnd.docker.container.image.v1+json' : 'application/vnd.oci.image.config.v1+json', ...config },
    layers: [{ mediaType: kind === 'docker' ? 'application/vnd.docker.image.rootfs.diff.tar.gzip' : 'application/vnd.oci.image.layer.v1.tar+gzip', ...layer }],
  };
  const body = JSON.stringify(manifest);
  const digest = await pushManifest(repo, tag, mediaType, manifest);
  return { digest, size: Buffer.byteLength(body), mediaType };
}

before(async () => {
  if (skip) return;
  dir = mkdtempSync(join(tmpdir(), 'registry-test-'));
  port = await freePort();
  base = `http://127.0.0.1:${port}`;
  // Our own config: Debian's default one wants htpasswd auth on a directory (DESIGN.md §10).
  const config = [
    'version: 0.1',
    'log:',
    '  level: warn',
    '  accesslog:',
    '    disabled: true',
    'storage:',
    '  filesystem:',
    `    rootdirectory: ${join(dir, 'data')}`,
    '  delete:',
    '    enabled: true',
    'http:',
    `  addr: 127.0.0.1:${port}`,
    '',
  ].join('\n');
  writeFileSync(join(dir, 'config.yml'), config);
  const env = Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith('REGISTRY_')));
  registry = spawn(REGISTRY_BIN, ['serve', join(dir, 'config.yml')], { env, stdio: ['ignore', 'pipe', 'pipe'] });
  registry.stdout!.on('data', (d: Buffer) => (registryLog += d.toString()));
  registry.stderr!.on('data', (d: Buffer) => (registryLog += d.toString()));
  await waitForRegistry(base);

  pushed['1.0'] = (await pushImage('test/app', '1.0', 'docker', 'one')).digest;
  const oci = await pushImage('test/app', '2.0', 'oci', 'two');
  pushed['2.0'] = oci.digest;
  pushed['3.0'] = await pushManifest('test/app', '3.0', 'application/vnd.oci.image.index.v1+json', {
    schemaVersion: 2,
    mediaType: 'application/vnd.oci.image.index.v1+json',
    manifests: [{ mediaType: oci.mediaType, digest: oci.digest, size: oci.size, platform: { architecture: 'amd64', os: 'linux' } }],
  });
});

after(async () => {
  if (registry && registry.exitCode === null) {
    const exited = new Promise((r) => registry!.once('exit', r));
    registry.kill('SIGTERM');
    await exited;
  }
  if (dir) rmSync(dir, { recursive: true, force: true });
});

function checkPinning(args: string[], env: Record<string, string> = {}): Promise<ScriptRun> {
  return runScriptProcess('check-pinning', args, { env: { NO_COLOR: '1', OPS_CONFIG: join(dir, 'no-config.yaml'), ...env } });
}

function composeText(): string {
  const r = `127.0.0.1:${port}/test/app`;
  return [
    '# A compose file whose comments and layout must survive --write.',
    'services:',
    '  app:',
    '    # the app itself',
    `    image: ${r}:1.0   # keep this comment`,
    '    restart: unless-stopped',
    '    healthcheck: { test: ["CMD", "true"], interval: 10s }',
    '  oci:',
    `    image: "${r}:2.0"  # TODO digest: waiting for the registry`,
    '  index:',
    `    image: '${r}:3.0'`,
    '  fromenv:',
    `    image: \${APP_IMAGE:-${r}:1.0}`,
    '  missing:',
    `    image: ${r}:9.9`,
    '',
  ].join('\n');
}

type ResolveDoc = { ok: boolean; images: { service: string; line: number; resolved?: { digest: string; pinned: string; source: string }; written?: boolean; findings: { severity: string; rule: string; message: string }[] }[] };

test('the registry serves what the test pushed: schema2 and OCI manifests and an OCI index', { skip }, async () => {
  const res = await fetch(`${base}/v2/test/app/manifests/3.0`, { headers: { accept: MANIFEST_MEDIA_TYPES.join(', ') } });
  assert.equal(res.status, 200);
  assert.equal(res.headers.get('content-type'), 'application/vnd.oci.image.index.v1+json');
  assert.equal(sha256(Buffer.from(await res.arrayBuffer())), pushed['3.0']);
});

test('RegistryClient: HEAD with every manifest media type returns the pushed digests', { skip }, async () => {
  const client = new RegistryClient();
  for (const tag of ['1.0', '2.0', '3.0']) {
    const ref = parseImageRef(`127.0.0.1:${port}/test/app:${tag}`);
    assert.ok(ref.ok);
    const got = await client.resolveDigest(ref.ref);
    assert.equal(got.digest, pushed[tag], tag);
    assert.equal(got.source, 'header');
  }
  const missing = parseImageRef(`127.0.0.1:${port}/test/app:9.9`);
  assert.ok(missing.ok);
  await assert.rejects(client.resolveDigest(missing.ref), /no manifest for "9\.9"/);
});

test('check-pinning --resolve prints tag@sha256 with the digests the registry reports and writes nothing', { skip }, async (t) => {
  const file = join(dir, 'resolve.yaml');
  writeFileSync(file, composeText());
  t.after(() => rmSync(file, { force: true }));
  const r = await checkPinning([file, '--resolve', '--json']);
  assert.equal(r.code, 1, 'tag 9.9 does not exist: a failed resolve fails the run');
  const doc = JSON.parse(r.stdout) as ResolveDoc;
  const by = Object.fromEntries(doc.images.map((i) => [i.service, i]));
  assert.equal(by.app!.resolved!.digest, pushed['1.0']);
  assert.equal(by.app!.resolved!.pinned, `127.0.0.1:${port}/test/app:1.0@${pushed['1.0']}`);
  assert.equal(by.oci!.resolved!.digest, pushed['2.0']);
  assert.equal(by.index!.resolved!.digest, pushed['3.0']);
  assert.equal(by.fromenv!.resolved!.digest, pushed['1.0'], 'images from variables are resolved too');
  assert.deepEqual(by.missing!.findings.map((f) => f.rule), ['no-digest', 'resolve-failed']);
  assert.equal(readFileSync(file, 'utf8'), composeText(), '--resolve alone changes nothing');

  const text = await checkPinning([file, '--resolve']);
  assert.match(text.stdout, new RegExp(`resolve\\.yaml:5:12 app: 127\\.0\\.0\\.1:${port}/test/app:1\\.0@${pushed['1.0']}`));
});

test('check-pinning --write pins an anchor where it is defined; the alias that uses it is not reported as not written', { skip }, async (t) => {
  const file = join(dir, 'anchor.yaml');
  const r0 = `127.0.0.1:${port}/test/app`;
  writeFileSync(file, `services:\n  a:\n    image: &img ${r0}:2.0\n  b:\n    image: *img\n`);
  t.after(() => rmSync(file, { force: true }));
  const r = await checkPinning([file, '--write', '--json']);
  assert.equal(r.code, 0, r.stdout + r.stderr);
  const by = Object.fromEntries((JSON.parse(r.stdout) as ResolveDoc).images.map((i) => [i.service, i]));
  assert.equal(by.a!.written, true);
  assert.doesNotMatch(by.b!.findings.map((f) => f.message).join(';'), /not written/);
  assert.equal(readFileSync(file, 'utf8'), `services:\n  a:\n    image: &img ${r0}:2.0@${pushed['2.0']}\n  b:\n    image: *img\n`);
});

test('check-pinning --write changes only the image lines, keeps comments, and never replaces a digest', { skip }, async (t) => {
  const file = join(dir, 'write.yaml');
  const before = composeText().replace(/\n  missing:\n.*\n/, '\n');
  writeFileSync(file, before);
  t.after(() => rmSync(file, { force: true }));
  const r = await checkPinning([file, '--write', '--json']);
  assert.equal(r.code, 0, r.stdout + r.stderr);
  const doc = JSON.parse(r.stdout) as ResolveDoc;
  const by = Object.fromEntries(doc.images.map((i) => [i.service, i]));
  assert.deepEqual(['app', 'oci', 'index', 'fromenv'].map((s) => by[s]!.written ?? false), [true, true, true, false]);
  assert.match(by.fromenv!.findings.map((f) => f.message).join(';'), /not written: the image comes from variables/);

  const after = readFileSync(file, 'utf8');
  const a = before.split('\n');
  const b = after.split('\n');
  assert.equal(b.length, a.length);
  const changed = a.flatMap((line, i) => (line === b[i] ? [] : [i + 1]));
  assert.deepEqual(changed, [5, 9, 11], 'only the three literal image lines changed');
  const r0 = `127.0.0.1:${port}/test/app`;
  assert.equal(b[4], `    image: ${r0}:1.0@${pushed['1.0']}   # keep this comment`);
  assert.equal(b[8], `    image: "${r0}:2.0@${pushed['2.0']}"`, 'the resolved TODO digest comment goes, the quoting stays');
  assert.equal(b[10], `    image: '${r0}:3.0@${pushed['3.0']}'`);

  // The tag is re-pushed: --resolve reports the drift and --write leaves the pinned digest alone.
  const moved = (await pushImage('test/app', '1.0', 'docker', 'one-rebuilt')).digest;
  assert.notEqual(moved, pushed['1.0']);
  t.after(async () => {
    await pushManifest('test/app', '1.0', 'application/vnd.docker.distribution.manifest.v2+json', JSON.parse(await (await fetch(`${base}/v2/test/app/manifests/${pushed['1.0']}`, { headers: { accept: 'application/vnd.docker.distribution.manifest.v2+json' } })).text()));
  });
  const drift = await checkPinning([file, '--write', '--json']);
  const driftDoc = JSON.parse(drift.stdout) as ResolveDoc;
  const app = driftDoc.images.find((i) => i.service === 'app')!;
  assert.ok(app.findings.some((f) => f.rule === 'digest-mismatch' && f.message.includes(moved)), JSON.stringify(app.findings));
  assert.equal(readFileSync(file, 'utf8'), after, 'an existing digest is never replaced');
});

test('RegistryClient: Bearer token auth via WWW-Authenticate, and GET + sha256 without Docker-Content-Digest or HEAD (fake token server in front of the real registry)', { skip }, async (t) => {
  const proxyPort = await freePort();
  const realm = `http://127.0.0.1:${proxyPort}/token`;
  const seen: string[] = [];
  let stripDigest = false;
  let headNotAllowed = false;
  const server: Server = createServer(async (req, res) => {
    const url = new URL(req.url!, realm);
    if (url.pathname === '/token') {
      seen.push(`token ${url.searchParams.get('service')} ${url.searchParams.get('scope')}`);
      res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ token: 'tok-123' }));
      return;
    }
    if (req.headers.authorization !== 'Bearer tok-123') {
      seen.push(`401 ${req.method}`);
      res.writeHead(401, { 'www-authenticate': `Bearer realm="${realm}",service="test-registry",scope="repository:test/app:pull"` }).end();
      return;
    }
    seen.push(`${req.method} ${url.pathname}`);
    if (headNotAllowed && req.method === 'HEAD') {
      res.writeHead(405).end();
      return;
    }
    const upstream = await fetch(`${base}${url.pathname}`, { method: req.method, headers: { accept: String(req.headers.accept ?? '') } });
    const headers: Record<string, string> = { 'content-type': upstream.headers.get('content-type') ?? 'application/octet-stream' };
    const digest = upstream.headers.get('docker-content-digest');
    if (digest && !stripDigest) headers['docker-content-digest'] = digest;
    const body = Buffer.from(await upstream.arrayBuffer());
    res.writeHead(upstream.status, headers).end(req.method === 'HEAD' ? undefined : body);
  });
  await new Promise<void>((r) => server.listen(proxyPort, '127.0.0.1', r));
  t.after(() => new Promise<void>((r) => server.close(() => r())));

  const ref = parseImageRef(`127.0.0.1:${proxyPort}/test/app:3.0`);
  assert.ok(ref.ok);
  const client = new RegistryClient();
  const viaHeader = await client.resolveDigest(ref.ref);
  assert.deepEqual([viaHeader.digest, viaHeader.source], [pushed['3.0'], 'header']);
  assert.deepEqual(seen, ['401 HEAD', 'token test-registry repository:test/app:pull', 'HEAD /v2/test/app/manifests/3.0']);

  stripDigest = true;
  seen.length = 0;
  const viaBody = await client.resolveDigest(ref.ref);
  assert.deepEqual([viaBody.digest, viaBody.source], [pushed['3.0'], 'body']);
  assert.deepEqual(seen, ['HEAD /v2/test/app/manifests/3.0', 'GET /v2/test/app/manifests/3.0'], 'the token is reused');

  headNotAllowed = true;
  stripDigest = false;
  const without = await client.resolveDigest(ref.ref);
  assert.deepEqual([without.digest, without.source], [pushed['3.0'], 'body'], 'a registry without HEAD: GET answers');
});

test('parseBearerChallenge reads quoted parameters with commas', () => {
  assert.deepEqual(parseBearerChallenge('Bearer realm="https://auth.docker.io/token",service="registry.docker.io",scope="repository:library/postgres:pull,push"'), {
    realm: 'https://auth.docker.io/token',
    service: 'registry.docker.io',
    scope: 'repository:library/postgres:pull,push',
  });
  assert.equal(parseBearerChallenge('Basic realm="x"'), undefined);
  assert.equal(parseBearerChallenge('Bearer service="x"'), undefined);
});
