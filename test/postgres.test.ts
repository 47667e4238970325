// The PostgreSQL round trip against a real throwaway cluster: backup-all, verify-latest, restore-all, and the
// failure modes an operator meets at 3 a.m. (damaged dumps, non-empty targets, killed runs, leaked passwords).
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync, spawn, spawnSync } from 'node:child_process';
import { existsSync, readFileSync, readdirSync, statSync, writeFileSync, truncateSync, openSync, writeSync, readSync, closeSync, mkdirSync, chmodSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { requireTools } from './helpers/tools.ts';
import { runScriptProcess, scriptPath } from './helpers/scripts.ts';
import { startBackupEnv, type BackupEnv } from './helpers/backup-env.ts';
import { listCompleteSets, checkManifest } from '../lib/backup-set.ts';
import { sha256File } from '../lib/fs-util.ts';

const skip = requireTools(['/usr/lib/postgresql/15/bin/initdb', 'zstd', 'psql', 'pg_dump', 'pg_restore']);
let env: BackupEnv;
const HOSTILE = `we"ird db's=x`;

before(async () => {
  if (skip) return;
  env = await startBackupEnv();
  env.pg.sql('CREATE DATABASE app;');
  env.pg.sql(`CREATE DATABASE "${HOSTILE.replace(/"/g, '""')}";`);
  env.pg.sql(
    `CREATE TABLE items (id bigint PRIMARY KEY, body text);
     INSERT INTO items SELECT g, repeat(md5(g::text), 4) FROM generate_series(1, 5000) g;
     CREATE SCHEMA "Odd Schema"; CREATE TABLE "Odd Schema"."Tab""le" (x int); INSERT INTO "Odd Schema"."Tab""le" VALUES (1), (2), (3);
     CREATE TABLE parted (k int, v text) PARTITION BY RANGE (k);
     CREATE TABLE parted_a PARTITION OF parted FOR VALUES FROM (0) TO (100);
     CREATE TABLE parted_b PARTITION OF parted FOR VALUES FROM (100) TO (200);
     INSERT INTO parted SELECT g, 'v' FROM generate_series(0, 199) g;`,
    'app',
  );
  env.pg.sql('CREATE TABLE t (x int); INSERT INTO t VALUES (42);', HOSTILE);
});

after(() => env?.destroy());

const counts = (db: string) => env.pg.sql(`SELECT (SELECT count(*) FROM items) || ',' || (SELECT count(*) FROM "Odd Schema"."Tab""le") || ',' || (SELECT count(*) FROM parted);`, db);
const databases = () => env.pg.sql('SELECT string_agg(datname, \',\' ORDER BY datname) FROM pg_database;');

test('round trip: backup-all, verify-latest --checksums, restore-all into new databases; counts match', { skip }, async () => {
  const config = env.config({ databases: ['app', HOSTILE], restoreInto: { app: 'app_restored', [HOSTILE]: 'hostile_restored' }, name: 'round.yaml' });
  const b = await runScriptProcess('backup-all', ['--config', config, '--json']);
  assert.equal(b.code, 0, b.stderr);
  const doc = JSON.parse(b.stdout) as { id: string; dir: string };
  const sets = await listCompleteSets(env.root);
  const set = sets.find((s) => s.id === doc.id)!;
  assert.ok(set, 'published set is listed');
  assert.deepEqual(checkManifest(set.manifest), []);
  assert.deepEqual(set.manifest.sources.postgres!.counts.app, { 'public.items': 5000, 'Odd Schema.Tab"le': 3, 'public.parted_a': 100, 'public.parted_b': 100 });
  assert.deepEqual(set.manifest.sources.postgres!.counts[HOSTILE], { 'public.t': 1 });
  for (const a of set.manifest.artifacts) {
    const p = join(set.dir, a.path);
    assert.equal(statSync(p).mode & 0o777, 0o600, `${a.path} is 0600`);
    assert.equal(await sha256File(p), a.sha256);
  }
  assert.equal(statSync(set.dir).mode & 0o777, 0o700);
  assert.equal(statSync(join(set.dir, 'manifest.json')).mode & 0o777, 0o600);
  assert.ok(set.manifest.artifacts.every((a) => !a.path.includes('..')), 'hostile names never become paths');

  const v = await runScriptProcess('verify-latest', ['--config', config, '--checksums']);
  assert.equal(v.code, 0, v.stdout + v.stderr);

  const r = await runScriptProcess('restore-all', ['--config', config, '--yes']);
  assert.equal(r.code, 0, r.stdout + r.stderr);
  assert.match(r.stdout, /counts match the manifest/);
  assert.equal(counts('app_restored'), counts('app'));
  assert.equal(env.pg.sql('SELECT count(*) FROM t;', 'hostile_restored'), '1');
});

test('counts describe exactly what the dump holds while the app keeps writing', { skip }, async () => {
  env.pg.sql('CREATE DATABASE busy;');
  env.pg.sql('CREATE TABLE events (id bigserial PRIMARY KEY, payload text); INSERT INTO events (payload) SELECT repeat(md5(g::text), 20) FROM generate_series(1, 200000) g;', 'busy');
  const config = env.config({ databases: ['busy'], restoreInto: { busy: 'busy_restored' }, name: 'busy.yaml' });
  // A writer inserting row after row, each its own transaction, for the whole backup.
  const writer = spawn('psql', ['-X', '-q', '-h', env.pg.dir, '-p', String(env.pg.port), '-U', 'postgres', '-d', 'busy'], { stdio: ['pipe', 'ignore', 'ignore'] });
  let writing = true;
  const feed = (async () => {
    while (writing) {
      writer.stdin.write("INSERT INTO events (payload) VALUES ('w');\n".repeat(50));
      await sleep(5);
    }
    writer.stdin.end();
  })();
  const before = Number(env.pg.sql('SELECT count(*) FROM events;', 'busy'));
  const b = await runScriptProcess('backup-all', ['--config', config, '--json']);
  writing = false;
  await feed;
  await new Promise((r) => writer.on('exit', r));
  assert.equal(b.code, 0, b.stderr);
  const after = Number(env.pg.sql('SELECT count(*) FROM events;', 'busy'));
  const recorded = (JSON.parse(b.stdout) as { sources: { postgres: { counts: Record<string, Record<string, number>> } } }).sources.postgres.counts.busy!['public.events']!;
  assert.ok(after > before, `the writer wrote during the test (${before} -> ${after})`);
  assert.ok(recorded >= before && recorded <= after, `recorded ${recorded} within [${before}, ${after}]`);
  const r = await runScriptProcess('restore-all', ['--config', config, '--yes', '--from', (JSON.parse(b.stdout) as { id: string }).id]);
  assert.equal(r.code, 0, r.stdout + r.stderr);
  assert.equal(Number(env.pg.sql('SELECT count(*) FROM events;', 'busy_restored')), recorded, 'the dump holds exactly the recorded rows');
});

async function freshSet(name: string, restoreInto: Record<string, string>) {
  const config = env.config({ databases: ['app'], restoreInto, name });
  const b = await runScriptProcess('backup-all', ['--config', config, '--json']);
  assert.equal(b.code, 0, b.stderr);
  const id = (JSON.parse(b.stdout) as { id: string }).id;
  const set = (await listCompleteSets(env.root)).find((s) => s.id === id)!;
  const dump = set.manifest.artifacts.find((a) => a.kind?.startsWith('pg_dump') && a.path.includes('app'))!;
  return { config, id, set, dumpPath: join(set.dir, dump.path), dump };
}

/**
 * Stand-ins for programs (name -> sh script body) in the sandbox directory `dirName`, and the env whose PATH finds
 * them first, the real programs behind them.
 */
function shims(dirName: string, scripts: Record<string, string>): { PATH: string } {
  const dir = join(env.dir, dirName);
  mkdirSync(dir, { recursive: true });
  for (const [tool, body] of Object.entries(scripts)) {
    writeFileSync(join(dir, tool), `#!/bin/sh\n${body}`);
    chmodSync(join(dir, tool), 0o755);
  }
  return { PATH: `${dir}:${process.env.PATH}` };
}

test('one flipped byte: verify-latest --checksums exits 4 naming the file; restore-all refuses before touching the target', { skip }, async () => {
  const { config, id, dumpPath, dump } = await freshSet('flip.yaml', { app: 'app_flip' });
  const fd = openSync(dumpPath, 'r+');
  const buf = Buffer.alloc(1);
  const pos = Math.floor(dump.size / 2);
  readSync(fd, buf, 0, 1, pos);
  buf[0] = buf[0]! ^ 0xff;
  writeSync(fd, buf, 0, 1, pos);
  closeSync(fd);
  const v = await runScriptProcess('verify-latest', ['--config', config, '--checksums', '--from', id]);
  assert.equal(v.code, 4, v.stdout + v.stderr);
  assert.ok((v.stdout + v.stderr).includes(`${dump.path}: sha256`), 'names the file');
  // The step that found the mismatch says so on its own line, not "ok".
  assert.match(v.stdout, /error +sha256 of every artifact failed: 1 mismatched/);
  assert.doesNotMatch(v.stdout, /ok +sha256 of every artifact/);
  const quick = await runScriptProcess('verify-latest', ['--config', config, '--from', id]);
  assert.equal(quick.code, 0, 'the quick level checks sizes only: same size passes');
  const before = databases();
  const r = await runScriptProcess('restore-all', ['--config', config, '--yes', '--from', id]);
  assert.equal(r.code, 4, r.stdout + r.stderr);
  assert.ok((r.stdout + r.stderr).includes(dump.path));
  assert.match(r.stdout, /error +sha256 of every artifact failed: 1 mismatched/);
  assert.equal(databases(), before, 'no database created or dropped');
});

test('a truncated dump with a "fixed" checksum is caught by the full read; restore-all refuses it', { skip }, async () => {
  const { config, id, set, dumpPath, dump } = await freshSet('trunc.yaml', { app: 'app_trunc' });
  truncateSync(dumpPath, Math.floor(dump.size * 0.6));
  const manifestPath = join(set.dir, 'manifest.json');
  const m = JSON.parse(readFileSync(manifestPath, 'utf8')) as { artifacts: { path: string; size: number; sha256: string }[] };
  const entry = m.artifacts.find((a) => a.path === dump.path)!;
  entry.size = statSync(dumpPath).size;
  entry.sha256 = await sha256File(dumpPath);
  writeFileSync(manifestPath, JSON.stringify(m));
  const v = await runScriptProcess('verify-latest', ['--config', config, '--checksums', '--from', id]);
  assert.equal(v.code, 4, v.stdout + v.stderr);
  assert.match(v.stdout + v.stderr, new RegExp(`${dump.path.replace(/\./g, '\\.')}: full read failed`));
  const before = databases();
  const r = await runScriptProcess('restore-all', ['--config', config, '--yes', '--from', id]);
  assert.equal(r.code, 4, r.stdout + r.stderr);
  assert.equal(databases(), before);
});

test('restore-all into a database that has tables exits 5 without --force; --dry-run changes nothing; --force swaps', { skip }, async () => {
  env.pg.sql('CREATE DATABASE app_busy; ', 'postgres');
  env.pg.sql('CREATE TABLE keepme (x int); INSERT INTO keepme VALUES (7);', 'app_busy');
  const { config, id } = await freshSet('busy-target.yaml', { app: 'app_busy' });
  const r = await runScriptProcess('restore-all', ['--config', config, '--yes', '--from', id]);
  assert.equal(r.code, 5, r.stdout + r.stderr);
  assert.match(r.stdout + r.stderr, /app_busy is not empty/);
  const before = databases();
  const dry = await runScriptProcess('restore-all', ['--config', config, '--dry-run', '--force', '--from', id]);
  assert.equal(dry.code, 0, dry.stdout + dry.stderr);
  assert.match(dry.stdout, /plan .*swap it in for app_busy/);
  assert.equal(databases(), before);
  assert.equal(env.pg.sql('SELECT x FROM keepme;', 'app_busy'), '7', 'dry run left the target alone');
  const noYes = await runScriptProcess('restore-all', ['--config', config, '--force', '--from', id]);
  assert.equal(noYes.code, 5, 'no TTY and no --yes: refused');
  assert.equal(env.pg.sql('SELECT x FROM keepme;', 'app_busy'), '7');
  // A database an earlier --force run of this set could not drop holds the name the replaced one would get.
  const leftover = `llc_old_${id.toLowerCase()}_0`;
  env.pg.sql(`CREATE DATABASE ${leftover};`);
  const forced = await runScriptProcess('restore-all', ['--config', config, '--force', '--yes', '--from', id]);
  assert.equal(forced.code, 0, forced.stdout + forced.stderr);
  assert.match(forced.stdout + forced.stderr, new RegExp(`${leftover} holds what an earlier --force restore replaced`));
  assert.equal(counts('app_busy'), counts('app'));
  assert.equal(env.pg.sql("SELECT count(*) FROM pg_tables WHERE tablename = 'keepme';", 'app_busy'), '0');
  assert.equal(env.pg.sql("SELECT string_agg(datname, ',') FROM pg_database WHERE datname LIKE 'llc_%';"), leftover, 'no staging or old database of this run left; the earlier one is the operator\'s to drop');
  env.pg.sql(`DROP DATABASE ${leftover};`);
});

test('SIGKILL mid-dump leaves no set; the next run clears the stale lock and staging dir and succeeds', { skip }, async () => {
  const config = env.config({ databases: ['app'], name: 'kill.yaml' });
  // Hold a lock pg_dump must wait for, so the kill lands mid-dump every time, not by timing luck.
  const blocker = spawn('psql', ['-X', '-q', '-h', env.pg.dir, '-p', String(env.pg.port), '-U', 'postgres', '-d', 'app'], { stdio: ['pipe', 'pipe', 'ignore'] });
  blocker.stdin.write('BEGIN; LOCK TABLE items IN ACCESS EXCLUSIVE MODE; SELECT 1;\n');
  await new Promise((r) => blocker.stdout.once('data', r));
  const setsBefore = (await listCompleteSets(env.root)).map((s) => s.id);
  const child = spawn(process.execPath, ['--import', 'tsx', scriptPath('backup-all'), '--config', config], { stdio: 'ignore' });
  const staging = join(env.root, '.staging');
  const deadline = Date.now() + 60_000;
  while (!(existsSync(staging) && readdirSync(staging).some((id) => existsSync(join(staging, id, 'postgres'))))) {
    assert.ok(Date.now() < deadline, 'backup-all reached the dump');
    await sleep(50);
  }
  await sleep(300);
  child.kill('SIGKILL');
  await new Promise((r) => child.on('exit', r));
  blocker.stdin.end('COMMIT;\n');
  await new Promise((r) => blocker.on('exit', r));
  assert.deepEqual((await listCompleteSets(env.root)).map((s) => s.id), setsBefore, 'no new set published');
  assert.ok(existsSync(join(env.root, '.lock')), 'the killed run left its lock');
  assert.ok(readdirSync(staging).length > 0, 'and its staging dir');
  const next = await runScriptProcess('backup-all', ['--config', config]);
  assert.equal(next.code, 0, next.stdout + next.stderr);
  assert.match(next.stdout, /cleared a stale lock left by backup-all/);
  assert.match(next.stdout, /removed the staging directory of an interrupted run/);
  assert.equal((await listCompleteSets(env.root)).length, setsBefore.length + 1);
  assert.equal(existsSync(join(env.root, '.lock')), false, 'lock released');
});

test('an interrupted backup-all leaves no command running, not even a pg_dump that ignores SIGTERM', { skip }, async () => {
  // A pg_dump that ignores SIGTERM (as a child stuck in I/O would, for a while): the interrupt's cleanup gives up on
  // it, and it must not be left behind holding its snapshot and writing into staging (nor keep backup-all alive).
  const pidFile = join(env.dir, 'deaf-pg_dump.pid');
  rmSync(pidFile, { force: true });
  const deaf = shims('deaf-pg_dump', { pg_dump: `case " $* " in *" --version "*) exec "${join(env.pg.binDir, 'pg_dump')}" "$@" ;; esac\ntrap '' TERM\necho $$ > "${pidFile}"\nexec sleep 120\n` });
  const config = env.config({ databases: ['app'], name: 'deaf.yaml' });
  const started = Date.now();
  const r = await runScriptProcess('backup-all', ['--config', config], { env: deaf, interrupt: { when: () => existsSync(pidFile) && readFileSync(pidFile, 'utf8').trim() !== '', signal: 'SIGTERM' } });
  assert.equal(r.code, 1, r.stdout + r.stderr);
  assert.match(r.stdout, /SIGTERM received: stopping after cleanup/);
  assert.ok(Date.now() - started < 60_000, 'backup-all did not wait for the deaf pg_dump to end by itself');
  const pid = Number(readFileSync(pidFile, 'utf8').trim());
  const alive = () => {
    try {
      process.kill(pid, 0);
      return !/^State:\s+Z/m.test(readFileSync(`/proc/${pid}/status`, 'utf8'));
    } catch {
      return false;
    }
  };
  for (let i = 0; i < 40 && alive(); i++) await sleep(50);
  assert.equal(alive(), false, `pg_dump (pid ${pid}) still running after backup-all exited`);
  // What the interrupted run left in staging the next run clears.
  const next = await runScriptProcess('backup-all', ['--config', config]);
  assert.equal(next.code, 0, next.stdout + next.stderr);
});

test('a live lock holder makes a second run exit 3', { skip }, async () => {
  const config = env.config({ databases: ['app'], name: 'locked.yaml' });
  mkdirSync(env.root, { recursive: true });
  const holder = spawn('sleep', ['30']);
  const start = readFileSync(`/proc/${holder.pid}/stat`, 'utf8');
  const procStart = start.slice(start.lastIndexOf(')') + 2).split(' ')[19];
  writeFileSync(join(env.root, '.lock'), JSON.stringify({ pid: holder.pid, procStart, host: (await import('node:os')).hostname(), command: 'backup-all (test holder)', startedAt: new Date().toISOString() }));
  try {
    const r = await runScriptProcess('backup-all', ['--config', config]);
    assert.equal(r.code, 3, r.stdout + r.stderr);
    assert.match(r.stdout + r.stderr, /another run holds the lock .*backup-all \(test holder\)/);
  } finally {
    holder.kill();
  }
  await new Promise((r) => holder.on('exit', r));
  // The holder is gone now: the same lock is stale and the next run clears it.
  const again = await runScriptProcess('backup-all', ['--config', config]);
  assert.equal(again.code, 0, again.stdout + again.stderr);
  assert.match(again.stdout, /cleared a stale lock left by backup-all \(test holder\)/);
});

test('the database password never appears in output, files, manifests or child argv (with --verbose)', { skip }, async () => {
  // Shims on PATH record the argv of every PostgreSQL tool and zstd we start, then run the real one.
  const argvLog = join(env.dir, 'argv.log');
  const tools = ['psql', 'pg_dump', 'pg_restore', 'pg_dumpall', 'zstd'];
  const real = (tool: string) => (tool === 'zstd' ? '/usr/bin/zstd' : join(env.pg.binDir, tool));
  const withShims = shims('shims', Object.fromEntries(tools.map((tool) => [tool, `printf '%s\\n' "$0 $*" >> "${argvLog}"\nexec "${real(tool)}" "$@"\n`])));
  const config = env.config({ databases: ['app'], restoreInto: { app: 'app_secret_check' }, name: 'secret.yaml' });
  const runs = [
    await runScriptProcess('backup-all', ['--config', config, '--verbose'], { env: withShims }),
    await runScriptProcess('backup-all', ['--config', config, '--verbose', '--json'], { env: withShims }),
    await runScriptProcess('verify-latest', ['--config', config, '--checksums', '--verbose', '--json'], { env: withShims }),
    await runScriptProcess('restore-all', ['--config', config, '--yes', '--verbose'], { env: withShims }),
    await runScriptProcess('restore-all', ['--config', config, '--dry-run', '--force', '--verbose'], { env: withShims }),
  ];
  runs.forEach((r, i) => assert.equal(r.code, 0, `run ${i}: ${r.stdout}${r.stderr}`));
  const pw = env.pg.password;
  const argv = readFileSync(argvLog, 'utf8');
  assert.ok(argv.includes('pg_dump') && argv.includes('pg_restore'), 'the shims saw the tools run');
  assert.ok(runs.some((r) => r.stdout.includes('PGPASSWORD=***')), 'verbose output shows the command with the password masked');
  const haystacks: [string, string][] = [['child argv', argv], ...runs.map((r, i) => [`run ${i} output`, r.stdout + r.stderr] as [string, string])];
  const walk = (d: string): string[] => readdirSync(d, { withFileTypes: true }).flatMap((e) => (e.isDirectory() ? walk(join(d, e.name)) : [join(d, e.name)]));
  for (const f of [...walk(env.root), ...walk(env.textfileDir)]) haystacks.push([f, readFileSync(f).toString('latin1')]);
  for (const [where, text] of haystacks) assert.ok(!text.includes(pw), `password found in ${where}`);
});

/** Every user table's and materialized view's rows as one md5 each, large objects, sequence positions: content, not order. */
function contentOf(db: string): string {
  return env.pg.sql(
    `SELECT format('SELECT %L || ''='' || md5(coalesce(string_agg(x::text, E''\\n'' ORDER BY x::text), '''')) FROM %s x', c.oid::regclass::text, c.oid::regclass)
       FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
      WHERE c.relkind IN ('r', 'm') AND n.nspname NOT IN ('pg_catalog', 'information_schema') AND n.nspname !~ '^pg_toast'
      ORDER BY 1 \\gexec
     SELECT 'lo=' || coalesce(string_agg(encode(lo_get(oid), 'escape'), ',' ORDER BY oid), '') FROM pg_largeobject_metadata;
     SELECT 'seq=' || last_value FROM odd_id_seq;`,
    db,
  );
}
/** The schema as pg_dump sees it, minus the per-run \restrict keys. */
const schemaOf = (db: string) =>
  execFileSync(join(env.pg.binDir, 'pg_dump'), ['--schema-only', '-h', env.pg.dir, '-p', String(env.pg.port), '-U', 'postgres', '-d', db], { encoding: 'utf8' })
    .split('\n')
    .filter((l) => !/^\\(un)?restrict /.test(l))
    .join('\n');

test('restore-all loads tables in parallel sessions and restores everything else: odd names, escapes, large objects, sequences, generated columns, matviews, keys', { skip }, async () => {
  env.pg.sql('CREATE DATABASE odd;');
  env.pg.sql(
    `CREATE TABLE "new
line ""t"" \\! x" (id int PRIMARY KEY, "we""ird col" text);
     INSERT INTO "new
line ""t"" \\! x" VALUES (1, 'a'), (2, E'tab\\there\\nnewline \\\\. backslash-dot\\r\\n\\\\');
     CREATE TABLE odd (id serial PRIMARY KEY, body text, n numeric, doubled int GENERATED ALWAYS AS (length(body) * 2) STORED, at timestamptz DEFAULT now());
     INSERT INTO odd (body, n) SELECT repeat(md5(g::text), 3) || E'\\n\\\\.' || g, g / 7.0 FROM generate_series(1, 40000) g;
     SELECT setval('odd_id_seq', 90000);
     CREATE TABLE child (id int REFERENCES odd (id), note text); INSERT INTO child SELECT g, 'c' || g FROM generate_series(1, 500) g;
     CREATE TABLE empty_one (x int);
     CREATE MATERIALIZED VIEW mv AS SELECT count(*) AS n FROM odd;
     CREATE FUNCTION bump() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN NEW.note := NEW.note || '!'; RETURN NEW; END $$;
     CREATE TRIGGER t_bump BEFORE INSERT ON child FOR EACH ROW EXECUTE FUNCTION bump();
     SELECT lo_from_bytea(0, 'large object one'), lo_from_bytea(0, 'two');`,
    'odd',
  );
  const config = env.config({ databases: ['odd'], restoreInto: { odd: 'odd_restored' }, name: 'odd.yaml' });
  const b = await runScriptProcess('backup-all', ['--config', config]);
  assert.equal(b.code, 0, b.stdout + b.stderr);
  const r = await runScriptProcess('restore-all', ['--config', config, '--yes']);
  assert.equal(r.code, 0, r.stdout + r.stderr);
  assert.match(r.stdout, /restore odd into llc_restore_\S+ \(.*\d+ tables' data over [2-9] sessions\)/, 'table data went through several sessions');
  const source = contentOf('odd');
  for (const rel of ['odd', 'child', 'empty_one', 'mv', '"new\nline ""t"" \\! x"']) assert.ok(source.includes(`${rel}=`), `the comparison covers ${rel}:\n${source}`);
  assert.match(source, /lo=large object one,two\nseq=90000$/, 'and large objects and the sequence');
  assert.equal(contentOf('odd_restored'), source);
  assert.equal(schemaOf('odd_restored'), schemaOf('odd'));
  assert.equal(env.pg.sql("SELECT count(*) FROM pg_database WHERE datname LIKE 'llc_%';"), '0', 'the staged database was renamed, not left');
  assert.equal(readdirSync(join(env.root, '.staging')).length, 0, 'no list files left in .staging');
});

test('a load session that fails: exit 1 naming its error, the staged database dropped, the target never created', { skip }, async () => {
  // A psql shim that fails the way a server error does (ON_ERROR_STOP exits 3) when it is a data session
  // (the only psql we start without -A), after reading a little of its input.
  const failing = shims('failing-psql', {
    psql: `case " $* " in *" -A "*) exec "${join(env.pg.binDir, 'psql')}" "$@" ;; esac\nhead -c 1000 > /dev/null\necho 'psql:<stdin>:12: ERROR:  could not extend file "base/1/2": No space left on device' >&2\nexit 3\n`,
  });
  const { config, id } = await freshSet('failing-load.yaml', { app: 'app_never' });
  const before = databases();
  const r = await runScriptProcess('restore-all', ['--config', config, '--yes', '--from', id], { env: failing });
  assert.equal(r.code, 1, r.stdout + r.stderr);
  assert.match(r.stdout + r.stderr, /No space left on device/);
  assert.equal(databases(), before, 'staged database dropped, app_never not created');
  // The same restore without the failure goes through, reusing nothing the failed one left.
  const ok = await runScriptProcess('restore-all', ['--config', config, '--yes', '--from', id]);
  assert.equal(ok.code, 0, ok.stdout + ok.stderr);
  assert.equal(counts('app_never'), counts('app'));
});

test('a schema pass that fails while the data pass has started: exit 1 naming the schema error, nothing left behind', { skip }, async () => {
  // A pg_restore shim that fails the schema pass (pre-data) the way a server error does, after the table of
  // contents and the data pass (which start at the same time) are under way; every other pass is the real one.
  const failing = shims('failing-pre-data', {
    pg_restore: `case " $* " in *" --section=pre-data "*) sleep 0.3; cat > /dev/null; echo 'pg_restore: error: could not execute query: ERROR:  type "vector" does not exist' >&2; exit 1 ;; esac\nexec "${join(env.pg.binDir, 'pg_restore')}" "$@"\n`,
  });
  const { config, id } = await freshSet('failing-schema.yaml', { app: 'app_no_schema' });
  const before = databases();
  const r = await runScriptProcess('restore-all', ['--config', config, '--yes', '--from', id], { env: failing });
  assert.equal(r.code, 1, r.stdout + r.stderr);
  assert.match(r.stdout + r.stderr, /type "vector" does not exist/, 'the schema error, not what it did to the data pass');
  assert.equal(databases(), before, 'staged database dropped, app_no_schema not created');
  assert.equal(env.pg.sql("SELECT count(*) FROM pg_stat_activity WHERE datname LIKE 'llc_restore_%';"), '0', 'no load session left connected');
});

test("a table the server's template1 holds does not end up in restored databases (created from template0)", { skip }, async () => {
  const { config, id } = await freshSet('template.yaml', { app: 'app_from_template0' });
  env.pg.sql('CREATE TABLE added_to_template1 (x int); INSERT INTO added_to_template1 VALUES (1);', 'template1');
  try {
    const r = await runScriptProcess('restore-all', ['--config', config, '--yes', '--from', id]);
    assert.equal(r.code, 0, r.stdout + r.stderr);
    assert.equal(env.pg.sql("SELECT count(*) FROM pg_tables WHERE tablename = 'added_to_template1';", 'app_from_template0'), '0');
    assert.equal(counts('app_from_template0'), counts('app'));
  } finally {
    env.pg.sql('DROP TABLE added_to_template1;', 'template1');
  }
});

test('two databases restored into one name, or into a template or llc_* name: exit 2 naming it, before anything is touched', { skip }, async () => {
  const config = env.config({ databases: ['app', HOSTILE], restoreInto: { app: 'one_target', [HOSTILE]: 'one_target' }, name: 'twice.yaml' });
  const b = await runScriptProcess('backup-all', ['--config', config]);
  assert.equal(b.code, 0, b.stdout + b.stderr);
  const before = databases();
  for (const flags of [['--dry-run'], ['--yes']]) {
    const r = await runScriptProcess('restore-all', ['--config', config, ...flags]);
    assert.equal(r.code, 2, r.stdout + r.stderr);
    assert.match(r.stdout + r.stderr, /sources\.postgres\.restoreInto: more than one database would be restored into one_target/);
  }
  for (const reserved of ['template1', 'llc_restore_20261124t023000z_0']) {
    const r = await runScriptProcess('restore-all', ['--config', env.config({ databases: ['app'], restoreInto: { app: reserved }, name: 'reserved.yaml' }), '--dry-run']);
    assert.equal(r.code, 2, r.stdout + r.stderr);
    assert.match(r.stdout + r.stderr, new RegExp(`${reserved} cannot be a restore target`));
  }
  assert.equal(databases(), before);
});

test('restoreInto that names no database (a typo), a name over 63 bytes, or replacing the postgres database: refused before anything is touched', { skip }, async () => {
  const config = env.config({ databases: ['app'], restoreInto: { apq: 'app_elsewhere' }, name: 'typo.yaml' });
  const b = await runScriptProcess('backup-all', ['--config', config]);
  assert.equal(b.code, 0, b.stdout + b.stderr);
  const before = databases();
  const appBefore = counts('app');
  // Without the check the key was ignored and --force replaced the live app database.
  const r = await runScriptProcess('restore-all', ['--config', config, '--force', '--yes']);
  assert.equal(r.code, 2, r.stdout + r.stderr);
  assert.match(r.stdout + r.stderr, /sources\.postgres\.restoreInto: "apq" is not a database of sources\.postgres\.databases or of set \d{8}T\d{6}Z \("app"\)/);
  const long = await runScriptProcess('restore-all', ['--config', env.config({ databases: ['app'], restoreInto: { app: 'L'.repeat(64) }, name: 'long.yaml' }), '--dry-run']);
  assert.equal(long.code, 2, long.stdout + long.stderr);
  assert.match(long.stdout + long.stderr, /a database name is at most 63 bytes/);
  env.pg.sql('CREATE TABLE llc_test_marker (x int);', 'postgres');
  try {
    const pgTarget = await runScriptProcess('restore-all', ['--config', env.config({ databases: ['app'], restoreInto: { app: 'postgres' }, name: 'pgtarget.yaml' }), '--force', '--dry-run']);
    assert.equal(pgTarget.code, 5, pgTarget.stdout + pgTarget.stderr);
    assert.match(pgTarget.stdout + pgTarget.stderr, /maintenance database restores run from and cannot be replaced/);
  } finally {
    env.pg.sql('DROP TABLE llc_test_marker;', 'postgres');
  }
  assert.equal(databases(), before);
  assert.equal(counts('app'), appBefore);
});

test('a set copied alone to a fresh root (no .staging there) restores; a malformed %-escape in the url is exit 2 without a trace', { skip }, async () => {
  const { config, id } = await freshSet('copied.yaml', { app: 'app_copied' });
  const fresh = join(env.dir, 'fresh-root');
  mkdirSync(fresh, { recursive: true });
  execFileSync('cp', ['-a', join(env.root, id), fresh]);
  const moved = join(env.dir, 'fresh.yaml');
  writeFileSync(moved, readFileSync(config, 'utf8').replace(`root: ${env.root}`, `root: ${fresh}`));
  const r = await runScriptProcess('restore-all', ['--config', moved, '--yes']);
  assert.equal(r.code, 0, r.stdout + r.stderr);
  assert.equal(counts('app_copied'), counts('app'));
  env.pg.sql('DROP DATABASE app_copied;');
  const badUrl = join(env.dir, 'badurl.yaml');
  writeFileSync(badUrl, readFileSync(config, 'utf8').replace(/url: postgresql:\/\/([^@\s]*)@/, 'url: postgresql://$1:ab%zz@'));
  const u = await runScriptProcess('restore-all', ['--config', badUrl, '--dry-run']);
  assert.equal(u.code, 2, u.stdout + u.stderr);
  assert.match(u.stdout + u.stderr, /sources\.postgres\.url: a malformed %-escape/);
  assert.doesNotMatch(u.stdout + u.stderr, /URIError|at .*\.ts:\d+/);
});

test('Ctrl-C during the load: exit 1, the staged database dropped, the target never created, no load session left', { skip }, async () => {
  // A pg_restore shim whose data pass (-f -) says it started, then blocks: the restore is interrupted right there.
  const started = join(env.dir, 'slow-data-pass.started');
  const slow = shims('slow-data-pass', { pg_restore: `case " $* " in *" -f - "*) touch "${started}"; exec sleep 30 ;; esac\nexec "${join(env.pg.binDir, 'pg_restore')}" "$@"\n` });
  const { config, id } = await freshSet('interrupted.yaml', { app: 'app_interrupted' });
  const before = databases();
  for (const signal of ['SIGINT', 'SIGTERM'] as const) {
    rmSync(started, { force: true });
    const r = await runScriptProcess('restore-all', ['--config', config, '--yes', '--from', id], {
      env: slow,
      interrupt: { when: () => existsSync(started), signal },
    });
    assert.equal(r.code, 1, r.stdout + r.stderr);
    assert.match(r.stdout + r.stderr, new RegExp(`${signal} received: stopping after cleanup`));
    assert.match(r.stdout + r.stderr, /app_interrupted was not created/);
    assert.equal(databases(), before, `staged database dropped, app_interrupted not created: ${r.stdout}${r.stderr}`);
    assert.equal(env.pg.sql("SELECT count(*) FROM pg_stat_activity WHERE datname LIKE 'llc_restore_%';"), '0');
  }
});

test('verify-latest --deep interrupted: exit 1 without a verdict or a failure metric, the scratch database dropped', { skip }, async () => {
  const started = join(env.dir, 'slow-drill.started');
  const slow = shims('slow-drill', { pg_restore: `case " $* " in *" -f - "*) touch "${started}"; exec sleep 30 ;; esac\nexec "${join(env.pg.binDir, 'pg_restore')}" "$@"\n` });
  const { config, id } = await freshSet('drill-interrupted.yaml', {});
  const prom = join(env.textfileDir, 'llc_verify.prom');
  const good = await runScriptProcess('verify-latest', ['--config', config, '--deep']);
  assert.equal(good.code, 0, good.stdout + good.stderr);
  const before = readFileSync(prom, 'utf8');
  const r = await runScriptProcess('verify-latest', ['--config', config, '--deep'], { env: slow, interrupt: { when: () => existsSync(started), signal: 'SIGTERM' } });
  assert.equal(r.code, 1, r.stdout + r.stderr);
  assert.doesNotMatch(r.stdout + r.stderr, /failed verification/);
  assert.equal(readFileSync(prom, 'utf8'), before, 'the last verdict stands');
  assert.equal(env.pg.sql(`SELECT count(*) FROM pg_database WHERE datname LIKE 'llc_scratch_${id.toLowerCase()}%';`), '0');
});

test('a staged database left by an interrupted restore of the same set is dropped first, and said so; one of another set is reported', { skip }, async () => {
  const { config, id } = await freshSet('leftover.yaml', { app: 'app_after_kill' });
  const leftover = `llc_restore_${id.toLowerCase()}_0`;
  env.pg.sql(`CREATE DATABASE ${leftover};`);
  env.pg.sql('CREATE TABLE half_loaded (x int);', leftover);
  const otherSet = 'llc_restore_20200101t000000z_0';
  env.pg.sql(`CREATE DATABASE ${otherSet};`);
  // The scratch directory of a restore that was killed (its pid is gone): removed, and said so.
  const deadScratch = join(env.root, '.staging', 'restore-999999999.1-killed');
  mkdirSync(deadScratch, { recursive: true });
  const dry = await runScriptProcess('restore-all', ['--config', config, '--dry-run', '--from', id]);
  assert.equal(dry.code, 0, dry.stdout + dry.stderr);
  assert.match(dry.stdout, new RegExp(`plan .*drop database ${leftover} first: an interrupted restore of this set left it`));
  assert.match(dry.stdout, new RegExp(`warn .*database ${otherSet} is a half-restored copy left by a restore of another set that was killed`));
  assert.doesNotMatch(dry.stdout, new RegExp(`warn .*database ${leftover} is a half-restored`), 'this set\'s own is dropped, not reported');
  const r = await runScriptProcess('restore-all', ['--config', config, '--yes', '--from', id]);
  assert.equal(r.code, 0, r.stdout + r.stderr);
  assert.match(r.stdout, /warn +postgres: removed \.staging\/restore-999999999\.1-killed, left by a restore that was killed/);
  assert.equal(existsSync(deadScratch), false);
  assert.equal(counts('app_after_kill'), counts('app'));
  assert.equal(env.pg.sql("SELECT count(*) FROM pg_tables WHERE tablename = 'half_loaded';", 'app_after_kill'), '0');
  assert.equal(env.pg.sql("SELECT string_agg(datname, ',') FROM pg_database WHERE datname LIKE 'llc_%';"), otherSet, 'another set\'s is left to the operator');
  env.pg.sql(`DROP DATABASE ${otherSet};`);
});

test('a database named __proto__ backs up and restores (into its restoreInto name, counts compared) like any other', { skip }, async () => {
  env.pg.sql('CREATE DATABASE "__proto__";');
  env.pg.sql('CREATE TABLE t (x int); INSERT INTO t SELECT generate_series(1, 7);', '__proto__');
  const config = env.config({ databases: ['__proto__'], restoreInto: Object.fromEntries([['__proto__', 'proto_copy']]), name: 'proto.yaml' });
  const b = await runScriptProcess('backup-all', ['--config', config, '--json']);
  assert.equal(b.code, 0, b.stdout + b.stderr);
  const id = (JSON.parse(b.stdout) as { id: string }).id;
  const set = (await listCompleteSets(env.root)).find((s) => s.id === id)!;
  assert.ok(Object.hasOwn(set.manifest.sources.postgres!.counts, '__proto__'));
  const r = await runScriptProcess('restore-all', ['--config', config, '--yes', '--from', id]);
  assert.equal(r.code, 0, r.stdout + r.stderr);
  assert.match(r.stdout, /restore __proto__ into llc_restore_/);
  assert.equal(env.pg.sql('SELECT count(*) FROM t;', 'proto_copy'), '7');
  assert.equal(env.pg.sql('SELECT count(*) FROM t;', '__proto__'), '7', 'the source database untouched');
  // Without a restoreInto entry for it: back into __proto__ itself (it was read as Object.prototype).
  env.pg.sql('DROP DATABASE "__proto__";');
  const plain = env.config({ databases: ['__proto__'], name: 'proto-plain.yaml' });
  const back = await runScriptProcess('restore-all', ['--config', plain, '--yes', '--from', id]);
  assert.equal(back.code, 0, back.stdout + back.stderr);
  assert.equal(env.pg.sql('SELECT count(*) FROM t;', '__proto__'), '7');
});

test("row counts come from the load when they match the manifest, from count(*) when rows went through a partitioned parent", { skip }, async () => {
  env.pg.sql('CREATE DATABASE hashed;');
  // pg_dump loads hash partitions keyed on an enum through their parent (COPY public.hp ... for hp0): psql's COPY
  // tags then name the parent, the manifest the partition. One partition here: an enum's hash depends on its values'
  // OIDs, which a restore changes, so with several the rows may land in other partitions (the next test).
  env.pg.sql(
    `CREATE TYPE mood AS ENUM ('sad', 'ok', 'happy');
     CREATE TABLE hp (m mood, v int) PARTITION BY HASH (m);
     CREATE TABLE hp0 PARTITION OF hp FOR VALUES WITH (MODULUS 1, REMAINDER 0);
     INSERT INTO hp SELECT (ARRAY['sad', 'ok', 'happy'])[1 + g % 3]::mood, g FROM generate_series(1, 300) g;
     CREATE TABLE plain (x int); INSERT INTO plain SELECT generate_series(1, 40);`,
    'hashed',
  );
  const config = env.config({ databases: ['app', 'hashed'], restoreInto: { app: 'app_counted', hashed: 'hashed_counted' }, name: 'counted.yaml' });
  const b = await runScriptProcess('backup-all', ['--config', config, '--json']);
  assert.equal(b.code, 0, b.stdout + b.stderr);
  const id = (JSON.parse(b.stdout) as { id: string }).id;
  const dumped = execFileSync('sh', ['-c', `zstd -dc "$1" | pg_restore -f - --section=data`, 'sh', join(env.root, id, 'postgres', readdirSync(join(env.root, id, 'postgres')).find((f) => f.startsWith('hashed'))!)], { env: { ...process.env, PATH: `/usr/lib/postgresql/15/bin:${process.env.PATH}` } }).toString();
  assert.match(dumped, /^COPY public\.hp \(m, v\) FROM stdin;$/m, 'the premise: the partitions are loaded through their parent');
  const r = await runScriptProcess('restore-all', ['--config', config, '--yes', '--from', id, '--verbose']);
  assert.equal(r.code, 0, r.stdout + r.stderr);
  assert.match(r.stdout, /llc_restore_\S+_0: row counts as the load stored them/, 'app: the COPY tags matched');
  assert.match(r.stdout, /llc_restore_\S+_1: the tables and rows the load stored differ from the manifest for 2 table\(s\) .*: counting every table/, 'hashed: hp (loaded), hp0 (counted)');
  assert.match(r.stdout, /counts match the manifest/);
  assert.equal(counts('app_counted'), counts('app'));
  const hashed = "SELECT (SELECT count(*) FROM hp0) || ',' || (SELECT count(*) FROM plain);";
  assert.equal(env.pg.sql(hashed, 'hashed_counted'), env.pg.sql(hashed, 'hashed'));
  assert.equal(env.pg.sql(hashed, 'hashed'), '300,40');
});

test('hash partitions keyed on an enum: rows a restore routes into other partitions pass as one table, in restore-all and the --deep drill', { skip }, async () => {
  env.pg.sql('CREATE DATABASE hashmoves;');
  // 40 values, value i on i rows, over 8 partitions: an enum hashes by its values' OIDs, which the restore renumbers,
  // so the partitions' rows come out otherwise (the premise, checked below) while the table's do not.
  const labels = Array.from({ length: 40 }, (_, i) => `'v${i + 1}'`).join(', ');
  env.pg.sql(
    `CREATE TYPE tone AS ENUM (${labels});
     CREATE TABLE ev (t tone, n int) PARTITION BY HASH (t);
     ${Array.from({ length: 8 }, (_, i) => `CREATE TABLE ev_${i} PARTITION OF ev FOR VALUES WITH (MODULUS 8, REMAINDER ${i});`).join('\n')}
     INSERT INTO ev SELECT ('v' || v)::tone, g FROM generate_series(1, 40) v, generate_series(1, v) g;`,
    'hashmoves',
  );
  const config = env.config({ databases: ['hashmoves'], restoreInto: { hashmoves: 'hashmoves_r' }, name: 'hashmoves.yaml' });
  const b = await runScriptProcess('backup-all', ['--config', config, '--json']);
  assert.equal(b.code, 0, b.stdout + b.stderr);
  const id = (JSON.parse(b.stdout) as { id: string }).id;
  const spread = "SELECT string_agg(tableoid::regclass || '=' || n, ',' ORDER BY tableoid::regclass::text) FROM (SELECT tableoid, count(*) AS n FROM ev GROUP BY 1) s;";
  const r = await runScriptProcess('restore-all', ['--config', config, '--yes', '--from', id, '--verbose']);
  assert.equal(r.code, 0, r.stdout + r.stderr);
  assert.match(r.stdout, /the partitions of hash-partitioned public\.ev are compared together/);
  assert.match(r.stdout, /counts match the manifest/);
  assert.equal(env.pg.sql('SELECT count(*) FROM ev;', 'hashmoves_r'), '820');
  assert.notEqual(env.pg.sql(spread, 'hashmoves_r'), env.pg.sql(spread, 'hashmoves'), 'the premise: rows sit in other partitions than at the dump');
  const deep = await runScriptProcess('verify-latest', ['--config', config, '--deep']);
  assert.equal(deep.code, 0, deep.stdout + deep.stderr);
  assert.match(deep.stdout, /postgres: restore drill counts match the manifest/);
});

test('a table with no rows that the archive lacks is caught (exit 4, the target untouched); an existing empty target is counted with count(*)', { skip }, async () => {
  env.pg.sql('CREATE DATABASE zeroes;');
  env.pg.sql('CREATE TABLE full_t (x int); INSERT INTO full_t SELECT generate_series(1, 25); CREATE TABLE empty_t (x int);', 'zeroes');
  const config = env.config({ databases: ['zeroes'], restoreInto: { zeroes: 'zeroes_copy' }, name: 'zeroes.yaml' });
  const first = await runScriptProcess('backup-all', ['--config', config, '--json']);
  assert.equal(first.code, 0, first.stdout + first.stderr);
  const id = (JSON.parse(first.stdout) as { id: string }).id;
  // A valid dump of the same database without its empty table, put in the first set with its size and sha256.
  env.pg.sql('DROP TABLE empty_t;', 'zeroes');
  await sleep(1100); // a new set id needs a new second
  const second = await runScriptProcess('backup-all', ['--config', config, '--json']);
  assert.equal(second.code, 0, second.stdout + second.stderr);
  const sets = await listCompleteSets(env.root);
  const set = sets.find((s) => s.id === id)!;
  const other = sets.find((s) => s.id === (JSON.parse(second.stdout) as { id: string }).id)!;
  const artifact = set.manifest.artifacts.find((a) => a.path.startsWith('postgres/zeroes'))!;
  writeFileSync(join(set.dir, artifact.path), readFileSync(join(other.dir, other.manifest.artifacts.find((a) => a.path.startsWith('postgres/zeroes'))!.path)));
  const m = JSON.parse(readFileSync(join(set.dir, 'manifest.json'), 'utf8')) as typeof set.manifest;
  const entry = m.artifacts.find((a) => a.path === artifact.path)!;
  entry.size = statSync(join(set.dir, artifact.path)).size;
  entry.sha256 = await sha256File(join(set.dir, artifact.path));
  writeFileSync(join(set.dir, 'manifest.json'), JSON.stringify(m));
  assert.equal(m.sources.postgres!.counts.zeroes!['public.empty_t'], 0, 'the premise: the manifest lists the empty table');
  const r = await runScriptProcess('restore-all', ['--config', config, '--yes', '--from', id]);
  assert.equal(r.code, 4, r.stdout + r.stderr);
  assert.match(r.stdout + r.stderr, /zeroes public\.empty_t: expected 0, found absent/);
  assert.equal(env.pg.sql("SELECT count(*) FROM pg_database WHERE datname = 'zeroes_copy' OR datname LIKE 'llc_restore_%';"), '0', 'nothing created, nothing left');
  // Into an existing empty database (other sessions may write to it): counted, not taken from the load.
  env.pg.sql('CREATE DATABASE zeroes_copy;');
  const into = await runScriptProcess('restore-all', ['--config', config, '--yes', '--verbose', '--from', other.id]);
  assert.equal(into.code, 0, into.stdout + into.stderr);
  assert.match(into.stdout, /zeroes_copy: an existing database \(other sessions may write to it\): counting every table/);
  assert.equal(env.pg.sql('SELECT count(*) FROM full_t;', 'zeroes_copy'), '25');
});

test('restore-all killed (SIGKILL) in the middle of the load commits none of the rows its sessions had sent', { skip }, async () => {
  // The data pass's pg_restore hands over the first 200 kB of the rows (part of items), then hangs: the load
  // sessions are inside their COPY when our process dies, and see their input end.
  const started = join(env.dir, 'partial-data-pass.started');
  const partial = shims('partial-data-pass', {
    pg_restore: `case " $* " in *" -f - "*) "${join(env.pg.binDir, 'pg_restore')}" "$@" | { head -c 200000; touch "${started}"; exec sleep 30; } ;; *) exec "${join(env.pg.binDir, 'pg_restore')}" "$@" ;; esac\n`,
  });
  const { config, id } = await freshSet('killed.yaml', { app: 'app_killed' });
  env.pg.sql('CREATE DATABASE app_killed;'); // an existing empty target: the load goes straight into it
  try {
    const r = await runScriptProcess('restore-all', ['--config', config, '--yes', '--from', id], { env: partial, interrupt: { when: () => existsSync(started), signal: 'SIGKILL' } });
    assert.equal(r.code, null, 'killed');
    // Its psql sessions see the end of their input; wait for them to end.
    for (let i = 0; i < 100 && env.pg.sql("SELECT count(*) FROM pg_stat_activity WHERE datname = 'app_killed';") !== '0'; i++) await sleep(50);
    assert.equal(env.pg.sql("SELECT count(*) FROM pg_stat_activity WHERE datname = 'app_killed';"), '0');
    assert.equal(env.pg.sql('SELECT count(*) FROM items;', 'app_killed'), '0', 'no row committed');
  } finally {
    spawnSync('pkill', ['-f', 'partial-data-pass']); // the hanging shim, orphaned by the kill
  }
});
