// The image-reference parser against a table of valid and invalid references (distribution reference grammar,
// Docker's normalisation). Expected values are written out by hand from the grammar, not computed.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { canonicalName, digestError, familiarName, parseImageRef, withDigest } from '../lib/image-ref.ts';

const H = 'a'.repeat(64);
const H2 = '0123456789abcdef'.repeat(4);

interface Valid {
  in: string;
  domain: string;
  path: string;
  tag?: string;
  digest?: string;
}

const valid: Valid[] = [
  { in: 'postgres', domain: 'docker.io', path: 'library/postgres' },
  { in: 'postgres:17.6-bookworm', domain: 'docker.io', path: 'library/postgres', tag: '17.6-bookworm' },
  { in: 'qdrant/qdrant:v1.16.3', domain: 'docker.io', path: 'qdrant/qdrant', tag: 'v1.16.3' },
  { in: 'docker.io/postgres:17', domain: 'docker.io', path: 'library/postgres', tag: '17' },
  { in: 'docker.io/library/postgres:17', domain: 'docker.io', path: 'library/postgres', tag: '17' },
  { in: 'index.docker.io/library/redis:7', domain: 'docker.io', path: 'library/redis', tag: '7' },
  { in: 'index.docker.io/redis', domain: 'docker.io', path: 'library/redis' },
  { in: 'quay.io/minio/minio:RELEASE.2025-09-07T16-13-09Z', domain: 'quay.io', path: 'minio/minio', tag: 'RELEASE.2025-09-07T16-13-09Z' },
  { in: 'ghcr.io/llc/mcp:1.4.2', domain: 'ghcr.io', path: 'llc/mcp', tag: '1.4.2' },
  { in: 'localhost/app', domain: 'localhost', path: 'app' },
  { in: 'localhost:5000/app', domain: 'localhost:5000', path: 'app' },
  { in: 'localhost:5000/app:1.0', domain: 'localhost:5000', path: 'app', tag: '1.0' },
  { in: '127.0.0.1:5000/test/app:1.0', domain: '127.0.0.1:5000', path: 'test/app', tag: '1.0' },
  { in: '[::1]:5000/app', domain: '[::1]:5000', path: 'app' },
  { in: '[::1]:5000/app:2', domain: '[::1]:5000', path: 'app', tag: '2' },
  { in: '[2001:db8::1]/team/app:3.1', domain: '[2001:db8::1]', path: 'team/app', tag: '3.1' },
  { in: 'registry.example.com:5000/team/app:1.2.3', domain: 'registry.example.com:5000', path: 'team/app', tag: '1.2.3' },
  {
    in: `registry.example.com:5000/team/app:1.2.3@sha256:${H}`,
    domain: 'registry.example.com:5000',
    path: 'team/app',
    tag: '1.2.3',
    digest: `sha256:${H}`,
  },
  { in: `postgres@sha256:${H2}`, domain: 'docker.io', path: 'library/postgres', digest: `sha256:${H2}` },
  { in: `localhost:5000/app@sha256:${H}`, domain: 'localhost:5000', path: 'app', digest: `sha256:${H}` },
  { in: 'registry.example.com/a/b/c/d:e', domain: 'registry.example.com', path: 'a/b/c/d', tag: 'e' },
  { in: 'org/team/sub/app', domain: 'docker.io', path: 'org/team/sub/app' },
  { in: 'my_org/my__app', domain: 'docker.io', path: 'my_org/my__app' },
  { in: 'my-org/my---app:v1', domain: 'docker.io', path: 'my-org/my---app', tag: 'v1' },
  { in: 'a.b/c', domain: 'a.b', path: 'c' },
  { in: 'Registry.Example.COM/app:1', domain: 'Registry.Example.COM', path: 'app', tag: '1' },
  { in: 'app:_underscore-start', domain: 'docker.io', path: 'library/app', tag: '_underscore-start' },
  { in: `app:${'t'.repeat(128)}`, domain: 'docker.io', path: 'library/app', tag: 't'.repeat(128) },
  { in: 'localhost:5000', domain: 'docker.io', path: 'library/localhost', tag: '5000' },
  { in: `app@sha512:${'b'.repeat(128)}`, domain: 'docker.io', path: 'library/app', digest: `sha512:${'b'.repeat(128)}` },
];

const invalid: { in: string; error: RegExp }[] = [
  { in: '', error: /empty/ },
  { in: 'Postgres', error: /must be lowercase/ },
  { in: 'qdrant/Qdrant:v1', error: /must be lowercase/ },
  { in: 'localhost:5000/App', error: /must be lowercase/ },
  { in: 'postgres:', error: /empty tag/ },
  { in: 'postgres:bad/tag', error: /invalid registry host "postgres:bad"/ },
  { in: 'postgres:-dash', error: /invalid tag/ },
  { in: `postgres:${'t'.repeat(129)}`, error: /invalid tag/ },
  { in: 'postgres:tag with space', error: /whitespace/ },
  { in: ' postgres', error: /whitespace/ },
  { in: 'postgres@sha256:abc', error: /64 lowercase hex/ },
  { in: `postgres@sha256:${'A'.repeat(64)}`, error: /64 lowercase hex/ },
  { in: `postgres@md5:${'a'.repeat(32)}`, error: /unsupported digest algorithm/ },
  { in: 'postgres@', error: /invalid digest/ },
  { in: `postgres@${H}`, error: /invalid digest/ },
  { in: H, error: /image ID/ },
  { in: '-app', error: /invalid repository name/ },
  { in: 'app-', error: /invalid repository name/ },
  { in: 'a//b', error: /invalid repository name/ },
  { in: 'org/app/', error: /invalid repository name/ },
  { in: ':17', error: /names no repository/ },
  { in: '@sha256:' + H, error: /names no repository/ },
  { in: '-bad.host/app', error: /invalid registry host/ },
  { in: 'host_name.com/app', error: /invalid registry host/ },
  { in: 'localhost:port/app', error: /invalid registry host/ },
  { in: '${TAG_UNSET}', error: /must be lowercase/ },
  { in: '${tag}', error: /invalid repository name/ },
  { in: `${'a'.repeat(256)}`, error: /longer than 255/ },
];

test('table: at least 40 references', () => {
  assert.ok(valid.length + invalid.length >= 40, `${valid.length + invalid.length} cases`);
});

for (const c of valid) {
  test(`valid: ${c.in.length > 70 ? `${c.in.slice(0, 70)}…` : c.in}`, () => {
    const r = parseImageRef(c.in);
    assert.ok(r.ok, r.ok ? '' : r.error);
    assert.equal(r.ref.domain, c.domain);
    assert.equal(r.ref.path, c.path);
    assert.equal(r.ref.tag, c.tag);
    assert.equal(r.ref.digest, c.digest);
    assert.equal(r.ref.original, c.in);
  });
}

for (const c of invalid) {
  test(`invalid: ${JSON.stringify(c.in.length > 70 ? `${c.in.slice(0, 70)}…` : c.in)}`, () => {
    const r = parseImageRef(c.in);
    assert.equal(r.ok, false, `expected ${JSON.stringify(c.in)} to be rejected`);
    if (!r.ok) assert.match(r.error, c.error);
  });
}

test('canonical and familiar names follow Docker', () => {
  const name = (s: string) => {
    const r = parseImageRef(s);
    assert.ok(r.ok);
    return [canonicalName(r.ref), familiarName(r.ref)];
  };
  assert.deepEqual(name('postgres:17'), ['docker.io/library/postgres', 'postgres']);
  assert.deepEqual(name('docker.io/qdrant/qdrant'), ['docker.io/qdrant/qdrant', 'qdrant/qdrant']);
  assert.deepEqual(name('quay.io/minio/minio'), ['quay.io/minio/minio', 'quay.io/minio/minio']);
  assert.deepEqual(name('[::1]:5000/app'), ['[::1]:5000/app', '[::1]:5000/app']);
});

test('withDigest appends or replaces the digest and keeps the spelling of the name', () => {
  assert.equal(withDigest('postgres:17', `sha256:${H}`), `postgres:17@sha256:${H}`);
  assert.equal(withDigest(`docker.io/postgres:17@sha256:${H2}`, `sha256:${H}`), `docker.io/postgres:17@sha256:${H}`);
});

test('digestError accepts sha256/384/512 of the right length only', () => {
  assert.equal(digestError(`sha256:${H}`), undefined);
  assert.equal(digestError(`sha384:${'c'.repeat(96)}`), undefined);
  assert.match(digestError(`sha384:${'c'.repeat(64)}`) ?? '', /96 lowercase hex/);
  assert.match(digestError('sha256') ?? '', /expected <algorithm>:<hex>/);
});
