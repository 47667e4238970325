// Config loading: interpolation like Compose, every error with its path at once, exit 2, nothing touched.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { interpolate } from '../lib/interpolate.ts';
import { loadConfig, parseConfigText, schemaTypesAt } from '../lib/config.ts';
import { UsageError } from '../lib/errors.ts';
import { parseDuration } from '../lib/duration.ts';
import { runScriptProcess } from './helpers/scripts.ts';

test('interpolate: the Compose forms', () => {
  const env = { A: 'x', EMPTY: '' };
  assert.deepEqual(interpolate('${A}-$A-$$A', env), { value: 'x-x-$A', errors: [], used: ['A', 'A'] });
  assert.equal(interpolate('${EMPTY:-d}|${EMPTY-d}|${UNSET-d}|${UNSET:-${A}}', env).value, 'd||d|x');
  assert.equal(interpolate('${A:+set}|${EMPTY:+set}|${EMPTY+set}', env).value, 'set||set');
  assert.match(interpolate('${UNSET}', env).errors[0]!, /variable UNSET is not set/);
  assert.match(interpolate('${EMPTY:?needs a value}', env).errors[0]!, /EMPTY is empty: needs a value/);
  // A default is interpolated too, with its own problems: Compose refuses ${T:-${U:?required}} when neither is set.
  assert.deepEqual(interpolate('1.2${UNSET:-${ALSO_UNSET:?required}}', env).errors, ['variable ALSO_UNSET is not set: required']);
  assert.deepEqual(interpolate('${UNSET:-${ALSO_UNSET}}|${A:+${ALSO_UNSET2}}', env).errors.length, 2);
  assert.deepEqual(interpolate('${A:-${ALSO_UNSET}}', env).errors, [], 'a default not used is not read');
  assert.deepEqual(interpolate('${UNSET:-${A}}', env).used, ['UNSET', 'A']);
  assert.deepEqual(interpolate('${EMPTY?x}', env).errors, []);
  assert.match(interpolate('${A', env).errors[0]!, /invalid interpolation/);
});

test('durations', () => {
  assert.equal(parseDuration('26h'), 26 * 3600_000);
  assert.equal(parseDuration('1d12h'), 36 * 3600_000);
  assert.equal(parseDuration('90s'), 90_000);
  assert.throws(() => parseDuration('1x'));
  assert.throws(() => parseDuration(''));
});

const where = (env: Record<string, string | undefined> = {}) => ({ path: '/etc/ops.config.yaml', dir: '/etc', env });

test('a minimal config: backup.root and one local source; relative paths resolve against the config dir', () => {
  const { config, secrets } = parseConfigText(
    'backup:\n  root: ./b\nsources:\n  postgres:\n    via: local\n    url: postgresql://u@h/db\n    password: ${PW}\n    databases: [llc]\n',
    where({ PW: 's3cret-pw' }),
  );
  assert.equal(config.backup!.root, '/etc/b');
  assert.deepEqual(secrets, ['s3cret-pw']);
  // A variable named like a secret is one wherever it goes, a URL included.
  const inUrl = parseConfigText('backup:\n  root: ./b\nmigrations:\n  via: local\n  databaseUrl: postgresql://llc:${POSTGRES_PASSWORD}@db/llc\n', where({ POSTGRES_PASSWORD: 'Tr0ub/4dor#9' }));
  assert.deepEqual(inUrl.secrets, ['Tr0ub/4dor#9']);
});

test('numbers and booleans may come from variables, as in Compose', () => {
  const { config } = parseConfigText('backup:\n  root: /b\n  retention: { last: "${KEEP:-3}" }\n', where());
  assert.equal(config.backup!.retention!.last, 3);
  // Only where the schema wants a number or boolean: text fields keep what the variable holds, quoted or not.
  const env = { PW: '0123456', ROOT: '2024', KEY: 'true', DB: '42', N: '0.50' };
  const text = [
    'backup:',
    '  root: ${ROOT}',
    '  sizeDropWarn: ${N}',
    'sources:',
    '  postgres:',
    '    via: local',
    '    url: postgresql://u@h/db',
    '    password: ${PW}',
    '    databases: ["${DB}", x]',
    '  s3: { endpoint: "http://h:9000", accessKey: "${KEY}", secretKey: "${PW}" }',
    '',
  ].join('\n');
  const { config: c } = parseConfigText(text, where(env));
  assert.equal(c.backup!.root, '/etc/2024');
  assert.equal(c.backup!.sizeDropWarn, 0.5);
  assert.equal(c.sources!.postgres!.password, '0123456');
  assert.deepEqual(c.sources!.postgres!.databases, ['42', 'x']);
  assert.equal(c.sources!.s3!.accessKey, 'true');
  assert.equal(c.sources!.s3!.secretKey, '0123456');
  assert.deepEqual([...schemaTypesAt(['backup', 'retention', 'last'])], ['integer']);
  // An alias of an interpolated value is cast where it is used, as the anchor is.
  const aliased = parseConfigText('backup:\n  root: /b\n  retention: { last: &keep "${KEEP:-3}", daily: *keep, weekly: 2 }\n', where());
  assert.deepEqual(aliased.config.backup!.retention, { last: 3, daily: 3, weekly: 2 });
  assert.deepEqual([...schemaTypesAt(['sources', 'postgres', 'databases', 0])], ['string']);
});

test('every mistake is reported at once, each with its path', () => {
  const text = [
    'backup:',
    '  root: /srv/b',
    '  retension: { last: 3 }', // unknown key
    'sources:',
    '  postgres:',
    '    via: local',
    '    url: postgresql://u@h/db',
    '    databases: llc', // wrong type
    '    password: ${DB_PASSWORD}', // unset
    '  neo4j: { via: compose, databases: [] }', // too few items
    '  qdrant: { url: ftp://x }', // wrong pattern
  ].join('\n');
  const err = (() => {
    try {
      parseConfigText(text, where());
    } catch (e) {
      return e as UsageError;
    }
    throw new Error('expected an error');
  })();
  assert.ok(err instanceof UsageError);
  assert.equal(err.exitCode, 2);
  const d = err.details.join('\n');
  assert.match(d, /^backup\.retension: unknown key$/m);
  assert.match(d, /^sources\.postgres\.databases: must be array$/m);
  assert.match(d, /^sources\.postgres\.password: variable DB_PASSWORD is not set/m);
  assert.match(d, /^sources\.neo4j\.databases: must NOT have fewer than 1 items$/m);
  assert.match(d, /^sources\.qdrant\.url: must match pattern/m);
});

test('via: local needs a url; bad YAML and duplicate keys are errors', () => {
  assert.throws(() => parseConfigText('sources:\n  postgres: { via: local, databases: [a] }\n', where()), (e: UsageError) => e.details.includes('sources.postgres.url: is required'));
  assert.throws(() => parseConfigText('backup: [\n', where()), UsageError);
  assert.throws(() => parseConfigText('backup:\n  root: /a\n  root: /b\n', where()), (e: UsageError) => e.details.some((d) => /ops\.config\.yaml:3:3: Map keys must be unique/.test(d)));
});

test('.env beside the config is read, and the process environment wins over it', () => {
  const dir = mkdtempSync(join(tmpdir(), 'llc-cfg-'));
  try {
    writeFileSync(join(dir, 'ops.config.yaml'), 'backup:\n  root: ${ROOT}\n  maxAge: ${AGE}\n');
    writeFileSync(join(dir, '.env'), 'ROOT=/from/dotenv\nAGE=2h\n');
    const a = loadConfig({ configPath: join(dir, 'ops.config.yaml'), env: {} });
    assert.equal(a.config.backup!.root, '/from/dotenv');
    const b = loadConfig({ configPath: join(dir, 'ops.config.yaml'), env: { ROOT: '/from/env' } });
    assert.equal(b.config.backup!.root, '/from/env');
    assert.equal(b.config.backup!.maxAge, '2h');
    assert.throws(() => loadConfig({ configPath: join(dir, 'missing.yaml'), env: {} }), /config file not found/);
    // A directory where a file is named: a usage error naming it (it was an EISDIR trace and exit 1).
    assert.throws(() => loadConfig({ configPath: dir, env: {} }), (e: Error) => e instanceof UsageError && e.message === `config file ${dir} is a directory: name the file itself`);
    assert.throws(() => loadConfig({ configPath: join(dir, 'ops.config.yaml'), envFile: dir, env: {} }), (e: Error) => e instanceof UsageError && /^env file .* is a directory/.test(e.message));
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('backup-all with three mistakes prints all three with paths, exits 2 and touches nothing', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'llc-cfg-'));
  try {
    const root = join(dir, 'backups');
    writeFileSync(
      join(dir, 'ops.config.yaml'),
      `backup:\n  root: ${root}\n  colour: blue\nsources:\n  postgres:\n    via: local\n    url: postgresql://u@127.0.0.1:1/x\n    databases: 5\n    password: \${UNSET_PASSWORD_VAR}\n`,
    );
    const r = await runScriptProcess('backup-all', ['--config', join(dir, 'ops.config.yaml')], { env: { UNSET_PASSWORD_VAR: undefined } });
    assert.equal(r.code, 2, r.stderr + r.stdout);
    const text = r.stdout + r.stderr;
    assert.match(text, /backup\.colour: unknown key/);
    assert.match(text, /sources\.postgres\.databases: must be array/);
    assert.match(text, /sources\.postgres\.password: variable UNSET_PASSWORD_VAR is not set/);
    assert.equal(existsSync(root), false, 'nothing created');
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('an unset variable is reported once at its path, not again as the schema error its empty value makes', () => {
  const err = (() => {
    try {
      parseConfigText('sources:\n  postgres:\n    via: local\n    url: ${DB_URL}\n    databases: [a]\n  qdrant:\n    url: nope\n', where());
    } catch (e) {
      return e as UsageError;
    }
    throw new Error('expected an error');
  })();
  assert.deepEqual(err.details, ['sources.postgres.url: variable DB_URL is not set (use ${DB_URL:-default} for an optional value)', 'sources.qdrant.url: must match pattern "^https?://"']);
});

test('backup.root that is a file: every script that uses it exits 2 naming it, before anything else', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'llc-cfg-'));
  try {
    const root = join(dir, 'backups');
    writeFileSync(root, 'a file, not a directory\n');
    const config = join(dir, 'ops.config.yaml');
    writeFileSync(config, `backup:\n  root: ${root}\n  retention: { daily: 3 }\nsources:\n  postgres:\n    via: local\n    url: postgresql://u@127.0.0.1:1/x\n    databases: [a]\n`);
    const runs = await Promise.all([['backup-all'], ['verify-latest'], ['restore-all', '--yes'], ['rotate']].map(([script, ...flags]) => runScriptProcess(script!, ['--config', config, ...flags])));
    for (const r of runs) {
      assert.equal(r.code, 2, r.stdout + r.stderr);
      assert.match(r.stdout + r.stderr, new RegExp(`invalid config: backup\\.root: ${root.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')} is not a directory`));
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
