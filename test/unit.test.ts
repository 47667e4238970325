// Pure pieces: exact argv arrays, redaction, lock staleness, file names from hostile database names.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, mkdirSync, readdirSync, readFileSync, rmSync, symlinkSync, utimesSync, writeFileSync, existsSync } from 'node:fs';
import { tmpdir, hostname } from 'node:os';
import { join } from 'node:path';
import { execFile, spawnSync } from 'node:child_process';
import { composeArgv, composeExec, killInterruptibleChildren, Runner, stderrGist } from '../lib/run.ts';
import { Redactor } from '../lib/redact.ts';
import { Output, formatDuration } from '../lib/output.ts';
import { acquireLock, processStartTime, removeIfUnchanged } from '../lib/lock.ts';
import { parseCommand, runScript } from '../lib/cli.ts';
import { pgProgram } from '../lib/tools.ts';
import { pickSet } from '../lib/verify.ts';
import { writeSet } from './helpers/fake-sets.ts';
import { LockedError, UsageError, VerifyError } from '../lib/errors.ts';
import { compressionPlan, conninfoDb, dumpFileName, filterGlobals, pgEndpoint, quoteIdent } from '../lib/sources/postgres.ts';
import { setIdFor, setIdToDate, artifactPath, cleanDeadRestoreScratch, restoreScratchPrefix, staleStaging } from '../lib/backup-set.ts';
import { diffCounts } from '../lib/sources/types.ts';
import { Writable } from 'node:stream';
import { ensureDirSync, sha256File } from '../lib/fs-util.ts';
import { createHash, randomBytes } from 'node:crypto';

const compose = { files: ['/srv/llc/compose/compose.prod.yaml', '/srv/llc/compose/compose.observability.yaml'], projectName: 'llc' };

test('compose exec: -T always, env passed by name only, service then argv', () => {
  const cmd = composeExec(compose, 'postgres', { argv: ['pg_dump', '-Fc'], env: { PGPASSWORD: 'hunter22' } });
  assert.deepEqual(cmd.argv, ['docker', 'compose', '-f', compose.files[0], '-f', compose.files[1], '-p', 'llc', 'exec', '-T', '-e', 'PGPASSWORD', 'postgres', 'pg_dump', '-Fc']);
  assert.deepEqual(cmd.env, { PGPASSWORD: 'hunter22' });
  assert.ok(!cmd.argv.join(' ').includes('hunter22'));
  assert.deepEqual(composeArgv({ files: ['a.yaml'], command: ['podman', 'compose'] }, ['ps']), ['podman', 'compose', '-f', 'a.yaml', 'ps']);
});

test('postgres endpoint: compose adds -U inside the container; local keeps credentials in env', () => {
  const c = pgEndpoint({ via: 'compose', service: 'db', user: 'llc', databases: ['llc'] }, compose);
  assert.deepEqual(c.tool(['pg_dump', '-Fc', '-d', conninfoDb('llc')]).argv.slice(-7), ['-T', 'db', 'pg_dump', '-U', 'llc', '-Fc', '-d', "dbname='llc'"].slice(-7));
  assert.deepEqual(c.tool(['pg_dump', '--version'], { bare: true }).argv.slice(-3), ['db', 'pg_dump', '--version']);
  const l = pgEndpoint({ via: 'local', url: 'postgresql://app%40x:p%40ss@db.example:6543/ignored?sslmode=require', databases: ['llc'] }, undefined);
  const cmd = l.tool(['psql', '-d', conninfoDb('llc')]);
  // psql itself, or the program Debian's pg_wrapper would run (pgProgram, tested below), which may add PGSYSCONFDIR.
  assert.match(cmd.argv[0]!, /(?:^|\/)psql$/);
  assert.deepEqual(cmd.argv.slice(1), ['-d', "dbname='llc'"]);
  const { PGSYSCONFDIR: _conf, ...libpq } = cmd.env!;
  assert.deepEqual(libpq, { PGHOST: 'db.example', PGPORT: '6543', PGUSER: 'app@x', PGPASSWORD: 'p@ss', PGSSLMODE: 'require' });
  const sock = pgEndpoint({ via: 'local', url: 'postgresql://u@/x?host=/run/postgresql', password: 'pw', databases: ['x'] }, undefined);
  assert.equal(sock.tool(['psql']).env!.PGHOST, '/run/postgresql');
  assert.equal(sock.tool(['psql']).env!.PGPASSWORD, 'pw');
  assert.throws(() => pgEndpoint({ via: 'local', url: 'postgresql://u@h/x?options=-c', databases: ['x'] }, undefined), /unsupported parameter "options"/);
  assert.throws(() => pgEndpoint({ via: 'compose', databases: ['x'] }, undefined), /compose: is required/);
  const { PGSYSCONFDIR: _c2, ...multi } = pgEndpoint({ via: 'local', url: 'postgresql://[::1]:5433,db2/x', databases: ['x'] }, undefined).tool(['psql']).env!;
  assert.deepEqual(multi, { PGHOST: '::1,db2', PGPORT: '5433,' });
});

test('conninfo and identifiers quote any name', () => {
  assert.equal(conninfoDb(`a b'c\\d=e`), `dbname='a b\\'c\\\\d=e'`);
  assert.equal(quoteIdent('we"ird'), '"we""ird"');
});

test('dump file names never become paths', () => {
  for (const name of ['../../etc/passwd', 'a/b', '..', '.', 'x y', 'ünï', 'a%2Fb']) {
    const f = dumpFileName(name, 'native');
    assert.ok(!f.includes('/') && !f.startsWith('.'), `${name} -> ${f}`);
    assert.equal(decodeURIComponent(f.replace(/\.dump$/, '')), name, 'reversible');
  }
  assert.equal(dumpFileName('llc', 'zstd-external'), 'llc.dump.zst');
  assert.throws(() => artifactPath('/srv/b/set', '../other/x'), /leaves the set/);
});

test('compression: native zstd from PG16, host zstd before, explicit choices honoured', () => {
  assert.deepEqual(compressionPlan('auto', 17).pgDumpFlags, ['--compress=zstd:3']);
  assert.deepEqual(compressionPlan('auto', 15), { pgDumpFlags: ['-Z', '0'], external: true, kind: 'pg_dump+zstd', compression: 'zstd' });
  assert.equal(compressionPlan('gzip', 17).compression, 'gzip');
  assert.deepEqual(compressionPlan('none', 15).pgDumpFlags, ['-Z', '0']);
});

test('globals: statements about the connecting role are dropped, others kept', () => {
  const sql = ['CREATE ROLE postgres;', 'ALTER ROLE postgres WITH SUPERUSER PASSWORD \'x\';', 'CREATE ROLE "Odd Role";', 'ALTER ROLE "Odd Role" WITH LOGIN;', 'CREATE ROLE postgres_ro;'].join('\n');
  assert.deepEqual(filterGlobals(sql, 'postgres').split('\n'), ['CREATE ROLE "Odd Role";', 'ALTER ROLE "Odd Role" WITH LOGIN;', 'CREATE ROLE postgres_ro;']);
  assert.deepEqual(filterGlobals(sql, 'Odd Role').split('\n').length, 3);
});

test('set ids sort by time and round-trip', () => {
  const d = new Date('2026-11-24T02:30:05.123Z');
  assert.equal(setIdFor(d), '20261124T023005Z');
  assert.equal(setIdToDate('20261124T023005Z').toISOString(), '2026-11-24T02:30:05.000Z');
});

test('redactor: known secrets, their URL-encoded form, and passwords inside URLs', () => {
  const r = new Redactor();
  r.add('p@ss w0rd');
  r.add('ab'); // too short to mask safely
  assert.equal(r.redact('x p@ss w0rd y p%40ss%20w0rd ab'), 'x *** y *** ab');
  assert.equal(r.redact('postgresql://u:other@h/db'), 'postgresql://u:***@h/db');
  // Unencoded passwords with '/', '#', '?' or '@' (libpq and SQLAlchemy accept them): masked to the last '@'.
  assert.equal(r.redact("DATABASE_URL=$'postgresql://odd:Tr0ub/4dor#9@127.0.0.1:5432/db' next"), "DATABASE_URL=$'postgresql://odd:***@127.0.0.1:5432/db' next");
  assert.equal(r.redact('postgresql://u:a@b/c?d@h:1/db'), 'postgresql://u:***@h:1/db');
});

test('a secret with a quote or backslash never reaches --json output, escaped or not', () => {
  const secret = 'tok\\en"Zq9';
  const out = sink();
  const o = new Output({ json: true, stdout: out.stream, stderr: sink().stream, env: {} });
  o.redactor.add(secret);
  // As a value, and inside a message that itself holds the secret JSON-escaped (an echoed request body).
  o.result({ error: `401: Bearer ${secret}`, echoed: JSON.stringify({ authorization: `Bearer ${secret}` }) });
  assert.ok(!out.text.includes('Zq9'), out.text);
  const doc = JSON.parse(out.text) as { error: string; echoed: string };
  assert.equal(doc.error, '401: Bearer ***');
  assert.equal(doc.echoed, '{"authorization":"Bearer ***"}');
});

function sink() {
  let text = '';
  const stream = new Writable({ write(chunk, _e, cb) { text += chunk; cb(); } }) as Writable & { isTTY?: boolean };
  return { stream, get text() { return text; } };
}

test('output: timestamps and no colour when not a TTY; --json keeps stdout for the document', async () => {
  const out = sink();
  const err = sink();
  const o = new Output({ stdout: out.stream, stderr: err.stream, env: {}, now: () => new Date('2026-11-24T02:30:00Z') });
  o.ok('done');
  await o.step('step', async () => 5, (n) => ({ bytes: n }));
  assert.match(out.text, /^2026-11-24T02:30:00Z ok    done$/m);
  assert.match(out.text, /ok    step \(\d+ ms, 5 B\)/);
  assert.ok(!/\x1b\[/.test(out.text), 'no ANSI codes');
  const j = sink();
  const je = sink();
  const oj = new Output({ json: true, stdout: j.stream, stderr: je.stream, env: {} });
  oj.info('human line');
  oj.result({ ok: true });
  assert.deepEqual(JSON.parse(j.text), { ok: true });
  assert.match(je.text, /human line/);
});

test('runner: dry-run prints mutating commands with secrets masked and runs only read-only ones', async () => {
  const out = sink();
  const o = new Output({ stdout: out.stream, stderr: out.stream, env: {} });
  const runner = new Runner({ out: o, dryRun: true });
  const r = await runner.capture({ argv: ['touch', '/tmp/never'], env: { PGPASSWORD: 'zzsecretzz', PGHOST: 'h' } });
  assert.equal(r.code, 0);
  assert.match(out.text, /plan  PGPASSWORD=\*\*\* PGHOST=h touch \/tmp\/never/);
  const ro = await runner.capture({ argv: ['echo', 'hi'] }, { readOnly: true });
  assert.equal(ro.stdout, 'hi\n');
});

test('output: under --dry-run a step whose commands were only printed ends with a plan line, not "ok"', async () => {
  const out = sink();
  const o = new Output({ stdout: out.stream, stderr: out.stream, env: {}, dryRun: true });
  const runner = new Runner({ out: o, dryRun: true });
  await o.step('dump app', () => runner.pipeline([{ argv: ['pg_dump', 'app'] }], { stdout: '/tmp/never' }));
  await o.step('read the state', () => runner.capture({ argv: ['echo', 'hi'] }, { readOnly: true }));
  assert.match(out.text, /plan  dump app \(dry run: not run\)/);
  assert.doesNotMatch(out.text, /ok +dump app/);
  assert.match(out.text, /ok    read the state \(\d+ ms\)/, 'a read-only step that ran is reported as done');
});

test('runner: children that ignore an interrupt are killed by killInterruptibleChildren; an uninterruptible one is left to finish', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'llc-deaf-'));
  try {
    const o = new Output({ stdout: sink().stream, stderr: sink().stream, env: {} });
    const controller = new AbortController();
    const runner = new Runner({ out: o, signal: controller.signal });
    const deaf = (name: string) => ({ argv: ['sh', '-c', `trap '' TERM; echo $$ > ${join(dir, name)}; exec sleep 60`] });
    const pidOf = async (name: string) => {
      for (let i = 0; i < 100 && !existsSync(join(dir, name)); i++) await new Promise((r) => setTimeout(r, 20));
      for (let i = 0; i < 100 && !readFileSync(join(dir, name), 'utf8').trim(); i++) await new Promise((r) => setTimeout(r, 20));
      return Number(readFileSync(join(dir, name), 'utf8').trim());
    };
    const alive = (pid: number) => {
      try {
        process.kill(pid, 0);
        return !/^State:\s+Z/m.test(readFileSync(`/proc/${pid}/status`, 'utf8'));
      } catch {
        return false;
      }
    };
    const interrupted = runner.capture(deaf('a'));
    const kept = runner.uninterruptible().capture(deaf('b'), { allowFailure: true });
    const [a, b] = [await pidOf('a'), await pidOf('b')];
    // A Ctrl-C at a terminal goes to the foreground process group: the uninterruptible child is not in ours.
    const group = (pid: number) => Number(readFileSync(`/proc/${pid}/stat`, 'utf8').replace(/^.*\) /s, '').split(' ')[2]);
    assert.equal(group(a), group(process.pid), 'an interruptible child is in our process group');
    assert.equal(group(b), b, 'the uninterruptible child leads a group of its own');
    controller.abort(new Error('interrupted'));
    await assert.rejects(interrupted, /stopped: interrupted/);
    assert.equal(alive(a), true, 'the SIGTERM of the interrupt was ignored');
    assert.equal(killInterruptibleChildren(), 1);
    for (let i = 0; i < 50 && alive(a); i++) await new Promise((r) => setTimeout(r, 20));
    assert.equal(alive(a), false, 'killed');
    assert.equal(alive(b), true, 'the uninterruptible child runs on');
    process.kill(b, 'SIGKILL');
    await kept;
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('runner: a missing program and a failing pipeline stage are named', async () => {
  const o = new Output({ stdout: sink().stream, stderr: sink().stream, env: {} });
  const runner = new Runner({ out: o });
  await assert.rejects(runner.capture({ argv: ['no-such-tool-llc'] }), /command not found: no-such-tool-llc/);
  const dir = mkdtempSync(join(tmpdir(), 'llc-run-'));
  try {
    await assert.rejects(runner.pipeline([{ argv: ['sh', '-c', 'echo data; exit 3'] }, { argv: ['cat'] }], { stdout: join(dir, 'f') }), /sh -c .* exited 3/);
    await runner.pipeline([{ argv: ['seq', '1', '100000'] }, { argv: ['wc', '-l'] }], { stdout: join(dir, 'g') });
    // The writer dies of SIGPIPE because the reader failed: the reader is named, not the writer.
    await assert.rejects(runner.pipeline([{ argv: ['yes'] }, { argv: ['tee', '--output-error=exit', '/dev/null'] }, { argv: ['sh', '-c', 'head -c 10 >/dev/null; exit 7'] }], {}), /sh -c .* exited 7/);
    assert.equal(spawnSync('cat', [join(dir, 'g')]).stdout.toString().trim(), '100000');
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('runner: capture returns every byte a child wrote, even with many children at once; a daemon holding the pipe does not hang it', async () => {
  const o = new Output({ stdout: sink().stream, stderr: sink().stream, env: {} });
  const runner = new Runner({ out: o });
  // 'exit' often comes before the last reads of stdout/stderr while other children are busy (it did for 9 in 10 here).
  const runs = await Promise.all(
    Array.from({ length: 24 }, () => runner.capture({ argv: ['sh', '-c', 'seq 1 20000; seq 1 3000 >&2; echo LAST >&2; exit 3'] }, { allowFailure: true })),
  );
  for (const r of runs) {
    assert.equal(r.code, 3);
    assert.ok(r.stdout.endsWith('\n19999\n20000\n'), `stdout cut short: ...${r.stdout.slice(-20)}`);
    assert.match(r.stderr, /LAST\n$/);
  }
  // The daemon keeps the child's stdout open after the child exits: capture comes back while it still runs.
  const d = await runner.capture({ argv: ['sh', '-c', 'sleep 60 & echo $!'] });
  const daemon = Number(d.stdout.trim());
  assert.ok(daemon > 0, d.stdout);
  assert.doesNotThrow(() => process.kill(daemon, 0), 'the daemon is still running: capture did not wait for it');
  process.kill(daemon, 'SIGKILL');
});

test("pgProgram runs the newest version's program directly where Debian's pg_wrapper would, and nothing else", () => {
  const dir = mkdtempSync(join(tmpdir(), 'llc-pgw-'));
  try {
    const common = join(dir, 'share', 'postgresql-common');
    const binroot = join(dir, 'lib', 'postgresql');
    const bin = join(dir, 'bin');
    const other = join(dir, 'other');
    for (const d of [common, bin, other, join(binroot, '9.6', 'bin'), join(binroot, '15', 'bin'), join(binroot, '17', 'bin')]) mkdirSync(d, { recursive: true });
    const exe = (p: string) => writeFileSync(p, '#!/bin/sh\n', { mode: 0o755 });
    exe(join(common, 'pg_wrapper'));
    for (const v of ['9.6', '15', '17']) exe(join(binroot, v, 'bin', 'pg_restore'));
    exe(join(binroot, '9.6', 'bin', 'pg_dump'));
    exe(join(binroot, '15', 'bin', 'pg_dump'));
    symlinkSync(join(common, 'pg_wrapper'), join(bin, 'pg_restore'));
    symlinkSync(join(common, 'pg_wrapper'), join(bin, 'pg_dump'));
    exe(join(other, 'psql'));
    const env: Record<string, string> = { PGHOST: '127.0.0.1' };
    assert.equal(pgProgram('pg_restore', env, bin, binroot), join(binroot, '17', 'bin', 'pg_restore'), 'newest, compared as numbers');
    assert.equal(pgProgram('pg_dump', { PGHOST: 'h' }, bin, binroot), join(binroot, '15', 'bin', 'pg_dump'), 'newest version that has the program');
    assert.equal(env.PGSYSCONFDIR ?? process.env.PGSYSCONFDIR, process.env.PGSYSCONFDIR ?? '/etc/postgresql-common', 'as pg_wrapper sets it');
    assert.equal(pgProgram('pg_restore', {}, bin, binroot), 'pg_restore', 'no PGHOST: pg_wrapper picks a local cluster, leave it to it');
    assert.equal(pgProgram('psql', { PGHOST: 'h' }, `${other}:${bin}`, binroot), 'psql', 'a psql that is not pg_wrapper comes first on PATH');
    assert.equal(pgProgram('pg_restore', { PGHOST: 'h' }, `${other}:${bin}`, binroot), join(binroot, '17', 'bin', 'pg_restore'));
    assert.equal(pgProgram('pg_restore', { PGHOST: 'h' }, other, binroot), 'pg_restore', 'not on PATH: spawn reports it missing');
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('--from takes set ids only: a path or a typo is a usage error (exit 2), an unknown id a missing set (exit 4)', async () => {
  const root = mkdtempSync(join(tmpdir(), 'llc-pick-'));
  try {
    for (const id of ['../../etc', '20261124T023000Z/../x', '2026-11-24', '']) {
      await assert.rejects(pickSet(root, { id, needs: [] }), (err: unknown) => err instanceof UsageError && /is not a set id/.test((err as Error).message), id);
    }
    await assert.rejects(pickSet(root, { id: '20261124T023000Z', needs: [] }), (err: unknown) => err instanceof VerifyError && /no set 20261124T023000Z/.test((err as Error).message));
    // No set holds every source asked for (a store added to the config since): the newest set and the way out are named.
    writeSet(root, new Date('2026-11-24T02:30:00Z'));
    await assert.rejects(
      pickSet(root, { needs: ['postgres', 's3'], remedy: (newest) => `restore what it holds with --from ${newest.id}` }),
      (err: unknown) => err instanceof VerifyError && (err as Error).message === `no complete set under ${root} holds all of postgres, s3 (the newest, 20261124T023000Z, holds postgres: restore what it holds with --from 20261124T023000Z)`,
    );
    assert.equal((await pickSet(root, { needs: ['postgres'] })).id, '20261124T023000Z');
  } finally {
    rmSync(root, { recursive: true, force: true });
  }
});

test('lock: a live holder is exit 3, a dead one is cleared with a message, release removes only our lock', () => {
  const dir = mkdtempSync(join(tmpdir(), 'llc-lock-'));
  try {
    const messages: string[] = [];
    const a = acquireLock(dir, 'first', (m) => messages.push(m));
    assert.throws(() => acquireLock(dir, 'second', () => {}), (e: unknown) => e instanceof LockedError && e.exitCode === 3 && /first/.test(e.message));
    a.release();
    assert.equal(existsSync(join(dir, '.lock')), false);
    // A pid that no longer exists (a finished child) holds a stale lock.
    const dead = spawnSync('true');
    writeFileSync(join(dir, '.lock'), JSON.stringify({ pid: dead.pid, procStart: '1', host: hostname(), command: 'ghost', startedAt: 'then' }));
    const b = acquireLock(dir, 'third', (m) => messages.push(m));
    assert.match(messages.join('\n'), /cleared a stale lock left by ghost/);
    // Same pid, other start time: the pid was reused by an unrelated process.
    b.release();
    writeFileSync(join(dir, '.lock'), JSON.stringify({ pid: process.pid, procStart: 'not-our-start', host: hostname(), command: 'reused', startedAt: 'then' }));
    acquireLock(dir, 'fourth', (m) => messages.push(m)).release();
    assert.match(messages.join('\n'), /left by reused/);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('lock: a file that is not a lock (other JSON shapes, garbage) is cleared once old; a run killed while taking it leaves nothing behind', () => {
  const dir = mkdtempSync(join(tmpdir(), 'llc-lock-'));
  try {
    for (const content of ['{}', '123', '[]', '{"pid":"abc","host":"h","command":"c","startedAt":"t"}', 'garbage']) {
      writeFileSync(join(dir, '.lock'), content);
      // Fresh: a run may be writing it right now.
      assert.throws(() => acquireLock(dir, 'x', () => {}), (e: unknown) => e instanceof LockedError && /right now/.test((e as Error).message), content);
      const old = new Date(Date.now() - 60_000);
      utimesSync(join(dir, '.lock'), old, old);
      const messages: string[] = [];
      acquireLock(dir, 'x', (m) => messages.push(m)).release();
      assert.match(messages.join('\n'), /cleared an unreadable lock file/, content);
    }
    // The lock file of a run killed between writing its own file and linking it as .lock: removed by the next run.
    const dead = spawnSync('true');
    writeFileSync(join(dir, `.lock.${dead.pid}.0badcafe`), '{}');
    acquireLock(dir, 'y', () => {}).release();
    assert.deepEqual(readdirSync(dir).filter((n) => n.startsWith('.lock')), []);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('lock: a clearer that is alive is never overtaken, however old its .lock.clearing; a dead one is; removal compares content', () => {
  const dir = mkdtempSync(join(tmpdir(), 'llc-lock-clear-'));
  try {
    const dead = spawnSync('true');
    const stale = JSON.stringify({ pid: dead.pid, procStart: '1', host: hostname(), command: 'ghost', startedAt: 'then' });
    const old = new Date(Date.now() - 3_600_000);
    // A live clearer (this very process, as another run would be) stalled for an hour: others wait (exit 3).
    writeFileSync(join(dir, '.lock'), stale);
    writeFileSync(join(dir, '.lock.clearing'), JSON.stringify({ pid: process.pid, procStart: processStartTime(process.pid), host: hostname(), command: 'slow clearer', startedAt: 'now' }));
    utimesSync(join(dir, '.lock.clearing'), old, old);
    assert.throws(() => acquireLock(dir, 'x', () => {}), (e: unknown) => e instanceof LockedError && /another run is clearing a stale lock .* \(pid \d+ on /.test((e as Error).message));
    assert.equal(readFileSync(join(dir, '.lock'), 'utf8'), stale, 'the stale lock is left to its clearer');
    // The clearer died: its leftover goes, then the stale lock, then the lock is ours.
    writeFileSync(join(dir, '.lock.clearing'), JSON.stringify({ pid: dead.pid, procStart: '1', host: hostname(), command: 'dead clearer', startedAt: 'then' }));
    const messages: string[] = [];
    acquireLock(dir, 'y', (m) => messages.push(m)).release();
    assert.match(messages.join('\n'), /cleared a stale lock left by ghost/);
    assert.deepEqual(readdirSync(dir).filter((n) => n.startsWith('.lock')), []);
    // What was judged stale must still be there to be removed: a lock taken since is put back.
    writeFileSync(join(dir, '.lock'), 'taken since');
    assert.equal(removeIfUnchanged(join(dir, '.lock'), stale), false);
    assert.equal(readFileSync(join(dir, '.lock'), 'utf8'), 'taken since');
    assert.equal(removeIfUnchanged(join(dir, '.lock'), 'taken since'), true);
    assert.deepEqual(readdirSync(dir), []);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('lock: runs that find the same stale lock at the same instant never hold the lock at the same time', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'llc-lock-race-'));
  try {
    const dead = spawnSync('true');
    for (let round = 0; round < 4; round++) {
      writeFileSync(join(dir, '.lock'), JSON.stringify({ pid: dead.pid, procStart: '1', host: hostname(), command: 'ghost', startedAt: 'then' }));
      const at = Date.now() + 2500;
      const runs = await Promise.all(
        Array.from({ length: 8 }, () => new Promise<string>((resolve, reject) => {
          execFile(process.execPath, ['--import', 'tsx', join(import.meta.dirname, 'helpers', 'lock-holder.ts'), dir, String(at), '400'], (err, stdout) => (err ? reject(err) : resolve(stdout)));
        })),
      );
      const results = runs.map((r) => JSON.parse(r) as { held?: [number, number]; refused?: string });
      const held = results.flatMap((r) => (r.held ? [r.held] : [])).sort((a, b) => a[0] - b[0]);
      assert.ok(held.length >= 1, `round ${round}: nobody took the lock: ${runs.join('')}`);
      for (let i = 1; i < held.length; i++) assert.ok(held[i]![0] >= held[i - 1]![1], `round ${round}: two runs held the lock at once: ${JSON.stringify(held)}`);
      for (const r of results) if (r.refused) assert.match(r.refused, /holds the lock|right now/);
      assert.deepEqual(readdirSync(dir).filter((n) => n.startsWith('.lock')), []);
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('ensureDirSync creates missing levels, and fails (not spins) where a directory cannot be made', () => {
  const dir = mkdtempSync(join(tmpdir(), 'llc-dir-'));
  try {
    ensureDirSync(join(dir, 'a', 'b', 'c'));
    assert.ok(existsSync(join(dir, 'a', 'b', 'c')));
    writeFileSync(join(dir, 'file'), '');
    assert.throws(() => ensureDirSync(join(dir, 'file')), /not a directory/);
    // Node's recursive mkdir loops forever on this path; ours must throw.
    if (existsSync('/proc/self')) assert.throws(() => ensureDirSync('/proc/llc-ops-nope/x'), /cannot create directory \/proc\/llc-ops-nope/);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('sha256File equals the hash of the whole file, at every size around its two 1 MiB read buffers', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'llc-sha-'));
  try {
    const mib = 1 << 20;
    for (const size of [0, 1, mib - 1, mib, mib + 1, 2 * mib, 3 * mib + 7]) {
      const data = randomBytes(size);
      const file = join(dir, `f${size}`);
      writeFileSync(file, data);
      assert.equal(await sha256File(file), createHash('sha256').update(data).digest('hex'), `size ${size}`);
    }
    await assert.rejects(sha256File(join(dir, 'missing')), /ENOENT/);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('runScript: a flag error under --json still prints one JSON document on stdout (exit 2)', async () => {
  const chunks: string[] = [];
  const sink = (into: string[]) => new Writable({ write(c, _e, cb) { into.push(String(c)); cb(); } });
  const errs: string[] = [];
  const spec = { name: 'demo-script', summary: 's', examples: [], mutating: false, flags: {} };
  const code = await runScript(spec, ['--json', '--bogus'], async () => 0, { stdout: sink(chunks), stderr: sink(errs) });
  assert.equal(code, 2);
  const doc = JSON.parse(chunks.join('')) as { ok: boolean; exitCode: number; error: string };
  assert.deepEqual([doc.ok, doc.exitCode], [false, 2]);
  assert.match(doc.error, /bogus/);
  assert.match(errs.join(''), /bogus/);
  const plain: string[] = [];
  assert.equal(await runScript(spec, ['--bogus'], async () => 0, { stdout: sink(plain), stderr: sink([]) }), 2);
  assert.equal(plain.join(''), '', 'without --json stdout stays empty');
});

test('formatDuration rounds once, at the last unit shown', () => {
  const cases: [number, string][] = [
    [0, '0 ms'], [999.4, '999 ms'], [999.6, '1.0 s'], [4_240, '4.2 s'], [59_949, '59.9 s'], [59_960, '1 min 0 s'],
    [599_600, '10 min 0 s'], [187_000, '3 min 7 s'], [3_599_600, '1 h 0 min'], [18_120_000, '5 h 2 min'],
    [86_399_000, '1 d 0 h'], [273_600_000, '3 d 4 h'],
  ];
  for (const [ms, text] of cases) assert.equal(formatDuration(ms), text, String(ms));
});

test('parseCommand: a negative number after a string flag is its value (rollback --to -2), as --to=-2 is', async () => {
  const { spec } = await import('../scripts/rollback.ts');
  assert.equal(parseCommand(spec, ['--to', '-2', '--dry-run']).values.to, '-2');
  assert.equal(parseCommand(spec, ['--to=-2']).values.to, '-2');
  assert.equal(parseCommand(spec, ['--dry-run', '--to', '-10']).values['dry-run'], true);
  assert.throws(() => parseCommand(spec, ['--to', '-x']), UsageError, 'other dash words stay ambiguous');
  assert.throws(() => parseCommand(spec, ['-2']), UsageError, 'a stray negative number is no flag of ours');
});

test('output: a terminal that reports 0 columns gets no spinner (ora would clear rows without end)', async () => {
  let text = '';
  const stream = Object.assign(new Writable({ write(c, _e, cb) { text += String(c); cb(); } }), { isTTY: true, columns: 0 });
  const out = new Output({ stdout: stream, stderr: stream, env: { TERM: 'xterm' } });
  assert.equal(out.interactive, true);
  await out.step('a step', async () => new Promise((r) => setTimeout(r, 150)));
  assert.ok(text.length < 200, `a line, not a flood of escape codes: ${text.length} bytes`);
  assert.doesNotMatch(text, /\x1b\[1A/);
  assert.match(text, /a step/);
});

test('a failed command is summed up from its last error line, not cut to a tail that lost it', () => {
  const pgRestore = `pg_restore: while PROCESSING TOC:\npg_restore: from TOC entry 850; 1247 16390 TYPE color postgres\npg_restore: error: could not execute query: ERROR:  type "color" already exists\nCommand was: CREATE TYPE public.color AS ENUM (\n    'red',\n    'blue',\n    'cyan'\n);\n`;
  assert.equal(stderrGist(pgRestore), `pg_restore: error: could not execute query: ERROR:  type "color" already exists | Command was: CREATE TYPE public.color AS ENUM ( | 'red',`);
  assert.equal(stderrGist('psql:<stdin>:1: ERROR:  relation "nope" does not exist\nLINE 1: SELECT * FROM nope;\n                      ^\n'), 'psql:<stdin>:1: ERROR:  relation "nope" does not exist | LINE 1: SELECT * FROM nope; | ^');
  assert.equal(stderrGist('one\ntwo\nthree\nfour\n'), 'two | three | four', 'no error line: the last three');
  assert.equal(stderrGist(''), '');
});

test("a live restore's scratch directory under .staging is not an interrupted run's: cleaning leaves it, a dead one's goes", async () => {
  const root = mkdtempSync(join(tmpdir(), 'llc-staging-'));
  try {
    const live = `${restoreScratchPrefix()}abc`;
    // A process that has exited: its pid and start time no longer match a running process.
    const gone = spawnSync('true');
    const dead = `${restoreScratchPrefix(gone.pid)}def`;
    for (const name of [live, dead, '20261125T010203Z']) mkdirSync(join(root, '.staging', name), { recursive: true });
    assert.match(live, new RegExp(`^restore-${process.pid}\\.\\d+-abc$`));
    assert.deepEqual((await staleStaging(root)).sort(), ['20261125T010203Z', dead].sort(), "a backup's interrupted staging and a dead restore's, not the live one");
    assert.deepEqual(await cleanDeadRestoreScratch(root), [dead]);
    assert.deepEqual(readdirSync(join(root, '.staging')).sort(), ['20261125T010203Z', live].sort());
  } finally {
    rmSync(root, { recursive: true, force: true });
  }
});

test('diffCounts: each item on its own, grouped items by their sum, an item on one side only named on its own', () => {
  const expected = { app: { 'public.a': 3, 'public.ev_0': 5, 'public.ev_1': 0, 'public.ev_2': 2 }, other: { 'public.x': 1 } };
  assert.deepEqual(diffCounts(expected, structuredClone(expected)), []);
  const moved = { app: { 'public.a': 3, 'public.ev_0': 1, 'public.ev_1': 4, 'public.ev_2': 2 }, other: { 'public.x': 1 } };
  const groups = { app: { 'public.ev_0': 'public.ev', 'public.ev_1': 'public.ev', 'public.ev_2': 'public.ev' } };
  assert.deepEqual(diffCounts(expected, moved), ['app public.ev_0: expected 5, found 1', 'app public.ev_1: expected 0, found 4']);
  assert.deepEqual(diffCounts(expected, moved, groups), [], 'rows moved between partitions of one table');
  const lost = { app: { ...moved.app, 'public.ev_1': 3 }, other: { 'public.x': 1 } };
  assert.deepEqual(diffCounts(expected, lost, groups), ['app public.ev (its 3 partitions together): expected 7, found 6']);
  const { 'public.ev_2': _, ...without } = moved.app;
  // ev_2 missing is named; ev_0 and ev_1 still hold their 5 rows between them.
  assert.deepEqual(diffCounts(expected, { app: without, other: { 'public.x': 2 } }, groups), ['app public.ev_2: expected 2, found absent', 'other public.x: expected 1, found 2']);
  // Groups of one scope do not apply to another; a scope on one side only is named.
  assert.deepEqual(diffCounts({ b: { 'public.ev_0': 1 } }, { b: { 'public.ev_0': 2 } }, groups), ['b public.ev_0: expected 1, found 2']);
  assert.deepEqual(diffCounts({ a: {} }, { c: {} }), ['a: missing after restore', 'c: not in the backup']);
  // A database named __proto__ is an entry like any other, not the object's prototype.
  const proto = JSON.parse('{"__proto__": {"public.t": 1}}') as Record<string, Record<string, number>>;
  assert.deepEqual(diffCounts(proto, JSON.parse('{"__proto__": {"public.t": 2}}') as Record<string, Record<string, number>>), ['__proto__ public.t: expected 1, found 2']);
  assert.deepEqual(diffCounts(proto, {}), ['__proto__: missing after restore']);
});
