// check-pinning: the policy (pure) and the command as operators and CI run it (child process, real exit codes).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { copyFileSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { checkImage, pinningPolicy, type ImageInput } from '../lib/pinning-policy.ts';
import { composeImagesFromText, expandDotenv } from '../lib/compose-images.ts';
import { spec } from '../scripts/check-pinning.ts';
import { ROOT, runScriptProcess, type ScriptRun } from './helpers/scripts.ts';

const HEX = 'c0ffee'.repeat(10) + 'abcd';

/** Run check-pinning as a child process from any directory. No developer's ops.config.yaml may leak in: OPS_CONFIG
 * points nowhere unless a test sets it, and TAG_UNSET stays unset. */
function checkPinning(args: string[], opts: { cwd?: string; env?: Record<string, string | undefined> } = {}): Promise<ScriptRun> {
  return runScriptProcess('check-pinning', args, {
    cwd: opts.cwd,
    env: { NO_COLOR: '1', OPS_CONFIG: join(tmpdir(), 'no-such-ops.config.yaml'), TAG_UNSET: undefined, ...opts.env },
  });
}

function tempDir(t: { after: (fn: () => void) => void }): string {
  const dir = mkdtempSync(join(tmpdir(), 'check-pinning-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  return dir;
}

const ACCEPTANCE_2 = [
  'services:', //                                                  1
  '  db:', //                                                      2
  '    image: postgres', //                                        3
  '  vectors:', //                                                 4
  '    image: qdrant/qdrant:latest', //                            5
  '  app:', //                                                     6
  '    image: localhost:5000/app', //                              7
  '  broken:', //                                                  8
  '    image: ${TAG_UNSET}', //                                    9
  '  pinned:', //                                                  10
  `    image: registry.example.com:5000/team/app:1.2.3@sha256:${HEX}`, // 11
  '',
].join('\n');

// ---- the policy, pure -------------------------------------------------------------------------------------------

const judge = (input: Partial<ImageInput> & { raw: string }, policy = pinningPolicy()) =>
  checkImage({ service: 'app', interpolationErrors: [], value: input.raw, ...input }, policy).findings.map((f) => `${f.severity}:${f.rule}`);

test('policy: missing tag, latest and configured floating tags fail; digest-only passes with a warning', () => {
  assert.deepEqual(judge({ raw: 'postgres' }), ['error:missing-tag']);
  assert.deepEqual(judge({ raw: 'postgres:latest' }), ['error:floating-tag']);
  assert.deepEqual(judge({ raw: 'postgres:LATEST' }), ['error:floating-tag']);
  for (const tag of ['stable', 'main', 'master', 'edge', 'nightly', 'dev', 'lts', 'current', 'mainline', 'alpine', 'slim']) assert.deepEqual(judge({ raw: `app:${tag}` }), ['error:floating-tag'], tag);
  assert.deepEqual(judge({ raw: `postgres:latest@sha256:${HEX}` }), ['error:floating-tag']);
  assert.deepEqual(judge({ raw: `postgres@sha256:${HEX}` }), ['warning:digest-only']);
  assert.deepEqual(judge({ raw: 'postgres:17.6' }), ['warning:no-digest']);
  assert.deepEqual(judge({ raw: `postgres:17.6@sha256:${HEX}` }), []);
});

test('policy: a tag naming only a major version warns that it moves; a digest pins it; build numbers are not majors', () => {
  for (const tag of ['15', 'v2', '22-bookworm-slim', '3-alpine']) assert.deepEqual(judge({ raw: `app:${tag}` }), ['warning:major-only', 'warning:no-digest'], tag);
  assert.match(checkImage({ service: 'app', interpolationErrors: [], raw: 'postgres:15', value: 'postgres:15' }).findings[0]!.message, /names only major version 15: it moves to every 15\.x release/);
  assert.deepEqual(judge({ raw: 'postgres:15', service: 'postgres' }), ['warning:major-only', 'error:critical-needs-digest']);
  for (const tag of ['15.4', '2.10.2-alpine', '20241125', '1234', 'RELEASE.2025-09-07T16-13-09Z']) assert.deepEqual(judge({ raw: `app:${tag}` }), ['warning:no-digest'], tag);
  assert.deepEqual(judge({ raw: `app:15@sha256:${HEX}` }), []);
});

test('policy: configured floating tags replace the defaults, but latest always stays floating', () => {
  const policy = pinningPolicy({ floatingTags: ['Rolling'] });
  assert.deepEqual(judge({ raw: 'app:rolling' }, policy), ['error:floating-tag']);
  assert.deepEqual(judge({ raw: 'app:latest' }, policy), ['error:floating-tag']);
  assert.deepEqual(judge({ raw: 'app:stable' }, policy), ['warning:no-digest']);
});

test('policy: critical services need a digest; a "TODO digest: <reason>" marker turns that into a warning', () => {
  const critical = (raw: string, todoDigest?: string) => judge({ raw, service: 'postgres', ...(todoDigest ? { todoDigest } : {}) });
  assert.deepEqual(critical('postgres:17.6'), ['error:critical-needs-digest']);
  assert.deepEqual(critical('postgres:17.6', 'registry not reachable from the build host'), ['warning:digest-todo']);
  // The marker never excuses a floating or missing tag.
  assert.deepEqual(critical('postgres:latest', 'x'), ['error:floating-tag']);
  assert.deepEqual(critical('postgres', 'x'), ['error:missing-tag']);
  assert.deepEqual(critical(`postgres:17.6@sha256:${HEX}`, 'x'), ['warning:stale-digest-todo']);
  const custom = pinningPolicy({ critical: ['db'] });
  assert.deepEqual(judge({ raw: 'postgres:17.6', service: 'db' }, custom), ['error:critical-needs-digest']);
  assert.deepEqual(judge({ raw: 'postgres:17.6', service: 'postgres' }, custom), ['warning:no-digest']);
});

test('policy: unresolved variables, invalid references, and services without image or build fail', () => {
  assert.deepEqual(judge({ raw: '${TAG}', interpolationErrors: ['variable TAG is not set'] }), ['error:unresolved-variable']);
  assert.deepEqual(judge({ raw: 'Postgres:17' }), ['error:invalid-reference']);
  assert.deepEqual(checkImage({ service: 'x', interpolationErrors: [] }).findings.map((f) => f.rule), ['no-image']);
  assert.deepEqual(checkImage({ service: 'x', interpolationErrors: [], builds: true }).findings, []);
});

test('compose images: positions, interpolation, anchors, merge keys and TODO markers', () => {
  const text = [
    'x-base: &base', //                                   1
    '  image: "redis:7.4"', //                            2
    'services:', //                                       3
    '  cache:', //                                        4
    '    <<: *base', //                                   5
    '  db:', //                                           6
    '    # TODO digest: mirror not reachable yet', //      7
    '    image: postgres:${PG:-17.6}', //                 8
    '  proxy:', //                                        9
    "    image: 'caddy:2.10.2'  # TODO digest: later", // 10
    '  built:', //                                        11
    '    build: .', //                                    12
    '',
  ].join('\n');
  const { images } = composeImagesFromText(text, 'c.yaml', {});
  const by = Object.fromEntries(images.map((i) => [i.service, i]));
  assert.equal(by.cache!.value, 'redis:7.4');
  assert.equal(by.cache!.style, 'merged');
  assert.deepEqual([by.db!.line, by.db!.col, by.db!.value, by.db!.todoDigest], [8, 12, 'postgres:17.6', 'mirror not reachable yet']);
  assert.deepEqual([by.proxy!.line, by.proxy!.style, by.proxy!.todoDigest], [10, 'single', 'later']);
  assert.equal(by.built!.raw, undefined);
  assert.equal(by.built!.builds, true);
});

// ---- the command --------------------------------------------------------------------------------------------------

test('acceptance 2: four violations with their lines, exit 1; the fully pinned image passes', async (t) => {
  const dir = tempDir(t);
  const file = join(dir, 'compose.yaml');
  writeFileSync(file, ACCEPTANCE_2);
  const text = await checkPinning([file]);
  assert.equal(text.code, 1, text.stdout + text.stderr);
  const errors = text.stdout.split('\n').filter((l) => / error /.test(l) && l.includes(file));
  assert.deepEqual(
    errors.map((l) => /compose\.yaml:(\d+):(\d+) (\S+):/.exec(l)?.slice(1).join(':')),
    ['3:12:db', '5:12:vectors', '7:12:app', '9:12:broken'],
  );
  assert.match(text.stdout, /4 violations/);
  assert.match(text.stdout, /ok +\S+compose\.yaml:11:12 pinned: registry\.example\.com:5000\/team\/app:1\.2\.3@sha256:/);

  const json = await checkPinning([file, '--json']);
  assert.equal(json.code, 1);
  const doc = JSON.parse(json.stdout) as { ok: boolean; images: { service: string; line: number; findings: { severity: string; rule: string }[] }[] };
  assert.equal(doc.ok, false);
  const rules = Object.fromEntries(doc.images.map((i) => [i.service, i.findings.map((f) => `${f.severity}:${f.rule}`)]));
  assert.deepEqual(rules, {
    db: ['error:missing-tag'],
    vectors: ['error:floating-tag'],
    app: ['error:missing-tag'],
    broken: ['error:unresolved-variable'],
    pinned: [],
  });

  const gh = await checkPinning([file, '--format', 'github']);
  assert.equal(gh.code, 1);
  const annotations = gh.stdout.split('\n').filter((l) => l.startsWith('::'));
  assert.equal(annotations.length, 4);
  const escaped = file.replace(/:/g, '%3A').replace(/,/g, '%2C');
  assert.ok(annotations[0]!.startsWith(`::error file=${escaped},line=3,col=12,title=check-pinning missing-tag::service db: `), annotations[0]);
  assert.match(annotations[3]!, /^::error file=.*,line=9,col=12,.*::service broken: .*variable TAG_UNSET is not set/);
});

test('acceptance 1: compose/compose.prod.yaml passes with the committed compose/.env.example', async () => {
  const r = await checkPinning(['compose/compose.prod.yaml', '--dotenv', 'compose/.env.example', '--json']);
  assert.equal(r.code, 0, r.stdout + r.stderr);
  const doc = JSON.parse(r.stdout) as { ok: boolean; images: { service: string; ref?: { digest?: string }; findings: { severity: string }[] }[] };
  assert.equal(doc.ok, true);
  for (const service of ['postgres', 'qdrant', 'minio', 'neo4j', 'reverse-proxy']) {
    const img = doc.images.find((i) => i.service === service);
    assert.ok(img, `${service} is in compose.prod.yaml`);
    assert.match(img.ref?.digest ?? '', /^sha256:[a-f0-9]{64}$/, `${service} is pinned by digest`);
  }
  assert.ok(doc.images.every((i) => i.findings.every((f) => f.severity !== 'error')));
});

test('without .env beside the file the check falls back to .env.example; the process env wins; --dotenv is honoured', async (t) => {
  const dir = tempDir(t);
  mkdirSync(join(dir, 'compose'));
  const compose = 'services:\n  app:\n    image: ghcr.io/llc/app:${V:?set V}\n';
  writeFileSync(join(dir, 'compose', 'compose.yaml'), compose);
  const missing = await checkPinning([], { cwd: dir });
  assert.equal(missing.code, 1, 'no env file and no V: unresolved variable');
  assert.match(missing.stdout, /variable V is not set: set V/);
  writeFileSync(join(dir, 'compose', '.env.example'), 'V=1.2.3\n');
  const example = await checkPinning([], { cwd: dir });
  assert.equal(example.code, 0, example.stdout);
  assert.match(example.stdout, /ghcr\.io\/llc\/app:1\.2\.3/);
  writeFileSync(join(dir, 'compose', '.env'), 'V=latest\n');
  const dotenv = await checkPinning([], { cwd: dir });
  assert.equal(dotenv.code, 1, '.env beside the file wins over .env.example');
  assert.match(dotenv.stdout, /floating tag "latest"/);
  const fromProcess = await checkPinning([], { cwd: dir, env: { V: '2.0.0' } });
  assert.equal(fromProcess.code, 0, 'the process environment wins over .env');
  writeFileSync(join(dir, 'other.env'), 'V=3.0.0\n');
  const explicit = await checkPinning(['--dotenv', 'other.env', '--json'], { cwd: dir });
  assert.equal(explicit.code, 0);
  assert.match(explicit.stdout, /app:3\.0\.0/);
});

test('a critical service marked "# TODO digest: <reason>" is reported as a warning and the check exits 0', async (t) => {
  const dir = tempDir(t);
  const file = join(dir, 'compose.yaml');
  writeFileSync(file, 'services:\n  neo4j:\n    image: neo4j:5.26.12-community  # TODO digest: registry unreachable from this host\n');
  const r = await checkPinning([file]);
  assert.equal(r.code, 0, r.stdout);
  assert.match(r.stdout, /warn +\S+:3:12 neo4j: critical service without a digest, acknowledged by "TODO digest: registry unreachable from this host"/);
  writeFileSync(file, 'services:\n  neo4j:\n    image: neo4j:5.26.12-community  # TODO digest\n');
  assert.equal((await checkPinning([file])).code, 1, 'a marker without a reason is not an acknowledgement');
});

test('the pinning config section sets critical services and floating tags; without a config the defaults apply', async (t) => {
  const dir = tempDir(t);
  const file = join(dir, 'compose.yaml');
  writeFileSync(file, 'services:\n  db:\n    image: postgres:17.6\n  web:\n    image: nginx:rolling\n');
  assert.equal((await checkPinning([file])).code, 0, 'defaults: db is not critical, rolling is not floating');
  writeFileSync(join(dir, 'ops.config.yaml'), 'pinning:\n  critical: [db]\n  floatingTags: [rolling]\n');
  const r = await checkPinning([file, '--config', join(dir, 'ops.config.yaml'), '--json']);
  assert.equal(r.code, 1);
  const doc = JSON.parse(r.stdout) as { images: { service: string; findings: { rule: string }[] }[] };
  assert.deepEqual(doc.images.map((i) => [i.service, i.findings.map((f) => f.rule)]), [['db', ['critical-needs-digest']], ['web', ['floating-tag']]]);
  writeFileSync(join(dir, 'bad.yaml'), 'pinning:\n  critcal: [db]\n');
  const bad = await checkPinning([file, '--config', join(dir, 'bad.yaml')]);
  assert.equal(bad.code, 2, 'an unknown key in the pinning section is invalid config');
  assert.match(bad.stdout + bad.stderr, /pinning\.critcal: unknown key/);
});

test('exit 2 on an unreadable file, invalid YAML, and bad flags', async (t) => {
  const dir = tempDir(t);
  const missing = await checkPinning([join(dir, 'nope.yaml')]);
  assert.equal(missing.code, 2);
  assert.match(missing.stdout + missing.stderr, /cannot read .*nope\.yaml: ENOENT/);
  const bad = join(dir, 'bad.yaml');
  writeFileSync(bad, 'services:\n  a:\n    image: [unclosed\n');
  const yaml = await checkPinning([bad]);
  assert.equal(yaml.code, 2);
  assert.match(yaml.stdout + yaml.stderr, /invalid YAML in .*bad\.yaml/);
  const dup = join(dir, 'dup.yaml');
  writeFileSync(dup, 'services:\n  a:\n    image: x:1\n    image: x:2\n');
  const dupRun = await checkPinning([dup]);
  assert.equal(dupRun.code, 2, 'duplicate keys are invalid YAML, as in Compose');
  assert.match(dupRun.stdout + dupRun.stderr, /dup\.yaml:4:5: Map keys must be unique/, 'the place of the problem');
  assert.equal((await checkPinning([bad, '--format', 'xml'])).code, 2);
  assert.equal((await checkPinning([bad, '--no-such-flag'])).code, 2);
  // A missing --dotenv file, as a child process: the flag is ours, not Node's.
  const noEnvFile = await checkPinning([bad, '--dotenv', join(dir, 'missing.env')]);
  assert.equal(noEnvFile.code, 2);
  assert.match(noEnvFile.stdout + noEnvFile.stderr, /env file not found: .*missing\.env/);
  // Nothing to check passes on anything: an empty file, or files without a service, are exit 2 (a directory too).
  const empty = join(dir, 'empty.yaml');
  writeFileSync(empty, '');
  const noServices = join(dir, 'networks-only.yaml');
  writeFileSync(noServices, 'networks:\n  default: {}\nservices: {}\n');
  const nothing = await checkPinning([empty, noServices]);
  assert.equal(nothing.code, 2, nothing.stdout + nothing.stderr);
  assert.match(nothing.stdout + nothing.stderr, /no services in .*empty\.yaml, .*networks-only\.yaml: nothing to check/);
  const withOne = join(dir, 'one.yaml');
  writeFileSync(withOne, `services:\n  a:\n    image: x:1.2.3@sha256:${HEX}\n`);
  assert.equal((await checkPinning([withOne, empty])).code, 0, 'an empty override beside a file with services is fine');
  const directory = await checkPinning([dir]);
  assert.equal(directory.code, 2);
  assert.match(directory.stdout + directory.stderr, /cannot read .*: EISDIR/);
});

test('extends and override files: a service without image: that takes it from elsewhere is judged there, not flagged', async (t) => {
  const dir = tempDir(t);
  writeFileSync(join(dir, 'ext.yaml'), 'services:\n  base:\n    image: redis:7.2.4\n  app:\n    extends:\n      service: base\n  short:\n    extends: base\n');
  writeFileSync(join(dir, 'compose.override.yaml'), 'services:\n  mcp:\n    environment:\n      FOO: bar\n');
  writeFileSync(join(dir, 'base.yaml'), 'services:\n  x:\n    image: foo:latest\n');
  writeFileSync(join(dir, 'uses-base.yaml'), 'services:\n  y:\n    extends: { file: base.yaml, service: x }\n');
  writeFileSync(join(dir, 'plain.yaml'), 'services:\n  mcp:\n    environment:\n      FOO: bar\n');
  writeFileSync(join(dir, 'compose.yaml'), 'services:\n  mcp:\n    image: redis:7.2.4\n');
  for (const ok of [['ext.yaml'], ['compose.yaml', 'compose.override.yaml']]) {
    const r = await checkPinning(ok.map((f) => join(dir, f)));
    assert.equal(r.code, 0, `${ok}: ${r.stdout}${r.stderr}`);
    assert.match(r.stdout + r.stderr, /0 violations/);
  }
  // An override of a service no other file defines is what Compose rejects too.
  const alone = await checkPinning([join(dir, 'compose.override.yaml')]);
  assert.equal(alone.code, 1);
  assert.match(alone.stdout + alone.stderr, /mcp: defined only in an override file/);
  // The image comes with extends, and is judged under the extending service's name: critical stays critical.
  writeFileSync(join(dir, 'crit.yaml'), 'services:\n  db-base:\n    image: postgres:16.4\n  postgres:\n    extends: db-base\n');
  const crit = await checkPinning([join(dir, 'crit.yaml')]);
  assert.equal(crit.code, 1, crit.stdout + crit.stderr);
  assert.match(crit.stdout + crit.stderr, /crit\.yaml:4:3 postgres: critical service: image "postgres:16\.4" needs a digest/);
  // Broken links: a service that does not exist, in this file or another, and a circle across two files.
  writeFileSync(join(dir, 'missing.yaml'), 'services:\n  worker:\n    extends: appp\n  y:\n    extends: { file: base.yaml, service: nosuch }\n');
  const missing = await checkPinning([join(dir, 'missing.yaml')]);
  assert.equal(missing.code, 1);
  assert.match(missing.stdout + missing.stderr, /worker: extends appp: no such service/);
  assert.match(missing.stdout + missing.stderr, /y: extends nosuch in .*base\.yaml: no such service/);
  writeFileSync(join(dir, 'ca.yaml'), 'services:\n  a:\n    extends: { file: cb.yaml, service: b }\n');
  writeFileSync(join(dir, 'cb.yaml'), 'services:\n  b:\n    extends: { file: ca.yaml, service: a }\n');
  const circle = await checkPinning([join(dir, 'ca.yaml')]);
  assert.equal(circle.code, 1);
  assert.match(circle.stdout + circle.stderr, /a: extends goes round in a circle: a -> b \(cb\.yaml\) -> a \(ca\.yaml\)/);
  // The file extended from is checked too: a floating tag there is not hidden behind extends.
  const other = await checkPinning([join(dir, 'uses-base.yaml')]);
  assert.equal(other.code, 1, other.stdout + other.stderr);
  assert.match(other.stdout + other.stderr, /base\.yaml:3:12 x: image "foo:latest" uses the floating tag "latest"/);
  assert.match(other.stdout + other.stderr, /in 2 files/);
  // A file that is no override and names no image for a service is still broken.
  const plain = await checkPinning([join(dir, 'plain.yaml')]);
  assert.equal(plain.code, 1);
  assert.match(plain.stdout + plain.stderr, /plain\.yaml:2:3 mcp: no image: and no build:/);
});

test('include: the included files are checked too, with their own .env for defaults; remote includes and missing files are exit 2 naming where', async (t) => {
  const dir = tempDir(t);
  mkdirSync(join(dir, 'sub'));
  writeFileSync(join(dir, 'compose.yaml'), `include:\n  - sub/inc.yaml\n  - path: [sub/more.yaml]\n    env_file: other.env\nservices:\n  app:\n    image: ghcr.io/x/app:1.2.3@sha256:${HEX}\n`);
  writeFileSync(join(dir, 'sub', 'inc.yaml'), 'services:\n  bad:\n    image: nginx:${NGINX_TAG}\n  shared:\n    image: redis:${SHARED_TAG}\n');
  writeFileSync(join(dir, 'sub', '.env'), 'NGINX_TAG=latest\nSHARED_TAG=latest\n');
  writeFileSync(join(dir, '.env'), 'SHARED_TAG=7.4.1\n');
  writeFileSync(join(dir, 'sub', 'more.yaml'), 'services:\n  more:\n    image: redis:${REDIS_TAG}\n');
  writeFileSync(join(dir, 'other.env'), 'REDIS_TAG=stable\n');
  const r = await checkPinning([join(dir, 'compose.yaml')], { env: { NGINX_TAG: undefined, REDIS_TAG: undefined, SHARED_TAG: undefined } });
  assert.equal(r.code, 1, r.stdout + r.stderr);
  assert.match(r.stdout + r.stderr, /sub\/inc\.yaml:3:12 bad: image "nginx:\$\{NGINX_TAG\}" \(= "nginx:latest"\) uses the floating tag "latest"/, "the included file's .env gives defaults");
  assert.match(r.stdout + r.stderr, /shared: image "redis:\$\{SHARED_TAG\}" \(= "redis:7\.4\.1"\) has no digest/, "the including project's variables win over them");
  assert.match(r.stdout + r.stderr, /sub\/more\.yaml:3:12 more: image "redis:\$\{REDIS_TAG\}" \(= "redis:stable"\) uses the floating tag "stable"/, 'its env_file');
  assert.match(r.stdout + r.stderr, /4 images in 3 files: 2 violations/);
  // A file that only includes others is not "nothing to check".
  writeFileSync(join(dir, 'only.yaml'), 'include: [sub/inc.yaml]\n');
  const only = await checkPinning([join(dir, 'only.yaml')], { env: { NGINX_TAG: undefined } });
  assert.equal(only.code, 1, only.stdout + only.stderr);
  writeFileSync(join(dir, 'remote.yaml'), 'include:\n  - oci://registry.example/stack:1\n');
  const remote = await checkPinning([join(dir, 'remote.yaml')]);
  assert.equal(remote.code, 2, remote.stdout + remote.stderr);
  assert.match(remote.stdout + remote.stderr, /remote\.yaml:2:5: include of oci:\/\/registry\.example\/stack:1: a remote compose file cannot be checked here/);
  writeFileSync(join(dir, 'gone.yaml'), 'include:\n  - nothere.yaml\n');
  const gone = await checkPinning([join(dir, 'gone.yaml')]);
  assert.equal(gone.code, 2, gone.stdout + gone.stderr);
  assert.match(gone.stdout + gone.stderr, /cannot read .*nothere\.yaml: ENOENT \(included by .*gone\.yaml:2\)/);
});

test("a file a service extends is read with the extending project's variables (Compose's), not a .env beside it", async (t) => {
  const dir = tempDir(t);
  mkdirSync(join(dir, 'sub'));
  writeFileSync(join(dir, 'compose.yaml'), 'services:\n  web:\n    extends: { file: sub/common.yaml, service: base }\n');
  writeFileSync(join(dir, 'sub', 'common.yaml'), 'services:\n  base:\n    image: ghcr.io/x/web:${WEB_TAG}\n');
  writeFileSync(join(dir, '.env'), 'WEB_TAG=latest\n');
  writeFileSync(join(dir, 'sub', '.env'), 'WEB_TAG=1.4.2\n');
  const r = await checkPinning([join(dir, 'compose.yaml')], { env: { WEB_TAG: undefined } });
  assert.equal(r.code, 1, r.stdout + r.stderr);
  assert.match(r.stdout + r.stderr, /web: image "ghcr\.io\/x\/web:\$\{WEB_TAG\}" \(= "ghcr\.io\/x\/web:latest"\)/);
  writeFileSync(join(dir, 'missing.yaml'), 'services:\n  gone:\n    extends: { file: nothere.yaml, service: x }\n');
  const missing = await checkPinning([join(dir, 'missing.yaml')]);
  assert.equal(missing.code, 2);
  assert.match(missing.stdout + missing.stderr, /cannot read .*nothere\.yaml: ENOENT \(extended by service gone in .*missing\.yaml\)/);
});

test('compose text: a "# TODO digest:" inside a scalar is not a comment; an alias to no anchor is invalid YAML', () => {
  const block = composeImagesFromText('services:\n  postgres:\n    entrypoint: |\n      # TODO digest: shell text, not a comment\n    image: postgres:17.6\n', 'c.yaml', {});
  assert.equal(block.images[0]!.todoDigest, undefined, 'a block scalar line');
  const quoted = composeImagesFromText(`services:\n  postgres: { image: "postgres:17.6", command: "echo '# TODO digest: not a comment'" }\n`, 'c.yaml', {});
  assert.equal(quoted.images[0]!.todoDigest, undefined, 'inside a quoted string after the image');
  const real = composeImagesFromText('services:\n  postgres:\n    # TODO digest: mirrored registry has no digests yet\n    image: postgres:17.6 # TODO digest: and on the same line\n', 'c.yaml', {});
  assert.equal(real.images[0]!.todoDigest, 'and on the same line');
  assert.throws(
    () => composeImagesFromText('services:\n  b:\n    image: *nope\n  c:\n    build: .\n    <<: *nope2\n', 'c.yaml', {}),
    (e: Error & { details?: string[] }) => /invalid YAML in c\.yaml/.test(e.message) && e.details?.join('\n') === 'c.yaml:3:12: alias *nope names no anchor\nc.yaml:6:9: alias *nope2 names no anchor',
  );
});

test('.env values use the variables above them and the process environment, as Compose reads .env; single quotes are literal', async (t) => {
  const text = 'BASE=1.2.3\nTAG=${BASE}\nQUOTED="v${BASE}"\nLIT=\'${BASE}\'\nFROM_ENV=${OUTER:-none}\nUNSET=${NOWHERE}\n';
  const env = expandDotenv(text, { BASE: '1.2.3', TAG: '${BASE}', QUOTED: 'v${BASE}', LIT: '${BASE}', FROM_ENV: '${OUTER:-none}', UNSET: '${NOWHERE}' }, { OUTER: 'outer' });
  assert.deepEqual(env, { BASE: '1.2.3', TAG: '1.2.3', QUOTED: 'v1.2.3', LIT: '${BASE}', FROM_ENV: 'outer', UNSET: '${NOWHERE}' });
  const dir = tempDir(t);
  writeFileSync(join(dir, '.env'), 'BASE=1.2.3\nTAG=${BASE}\n');
  writeFileSync(join(dir, 'compose.yaml'), 'services:\n  app:\n    image: ghcr.io/x/app:${TAG}\n');
  const r = await checkPinning([join(dir, 'compose.yaml')]);
  assert.equal(r.code, 0, r.stdout + r.stderr);
  assert.match(r.stdout + r.stderr, /\(= "ghcr\.io\/x\/app:1\.2\.3"\)/);
});

test('every flag the docs may show is in spec.flags', () => {
  for (const flag of ['format', 'resolve', 'write', 'insecure-registry']) assert.ok(spec.flags[flag], flag);
});

test('the default file set is compose/*.yaml of the working directory', async (t) => {
  const dir = tempDir(t);
  mkdirSync(join(dir, 'compose'));
  copyFileSync(join(ROOT, 'compose', 'compose.prod.yaml'), join(dir, 'compose', 'compose.prod.yaml'));
  copyFileSync(join(ROOT, 'compose', '.env.example'), join(dir, 'compose', '.env.example'));
  writeFileSync(join(dir, 'compose', 'compose.extra.yaml'), 'services:\n  x:\n    image: busybox\n');
  const r = await checkPinning(['--json'], { cwd: dir });
  assert.equal(r.code, 1);
  const doc = JSON.parse(r.stdout) as { files: { file: string }[] };
  assert.deepEqual(doc.files.map((f) => f.file), ['compose/compose.extra.yaml', 'compose/compose.prod.yaml']);
  assert.equal(readFileSync(join(dir, 'compose', 'compose.prod.yaml'), 'utf8'), readFileSync(join(ROOT, 'compose', 'compose.prod.yaml'), 'utf8'), 'a check never writes');
});

test('--format github: a check that cannot run (exit 2) is an annotation too, on the file and line when it names one', async (t) => {
  const dir = tempDir(t);
  const bad = join(dir, 'compose.yaml');
  writeFileSync(bad, 'services:\n  a:\n    image: [unclosed\n');
  const r = await checkPinning([bad, '--format', 'github']);
  assert.equal(r.code, 2, r.stdout + r.stderr);
  const annotations = r.stdout.split('\n').filter((l) => l.startsWith('::'));
  assert.equal(annotations.length, 1, r.stdout);
  assert.match(annotations[0]!, /^::error file=[^,]*compose\.yaml,line=4,col=1,title=check-pinning::invalid YAML in .*compose\.yaml: Flow sequence/);
  const missing = await checkPinning([join(dir, 'absent.yaml'), '--format', 'github']);
  assert.equal(missing.code, 2);
  assert.deepEqual(missing.stdout.split('\n').filter((l) => l.startsWith('::')), [`::error title=check-pinning::cannot read ${join(dir, 'absent.yaml').replace(/%/g, '%25')}: ENOENT`]);
  // Text format and bad flags: no annotations.
  assert.ok(!(await checkPinning([bad])).stdout.includes('::error'));
  assert.ok(!(await checkPinning([bad, '--format', 'xml'])).stdout.includes('::error'));
});
