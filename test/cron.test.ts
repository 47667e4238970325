// The schedule: every crontab line parses (valid fields, existing scripts, real flags), rotate runs only after a
// successful backup, and backup-all from cron (env -i, no TTY) prints plain timestamped lines.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { findCommands } from '../lib/doc-commands.ts';
import { parseCommand, type CommandSpec } from '../lib/cli.ts';
import { ROOT, runScriptProcess } from './helpers/scripts.ts';
import { requireTools } from './helpers/tools.ts';
import { startBackupEnv, type BackupEnv } from './helpers/backup-env.ts';

const FIELDS: [string, number, number][] = [
  ['minute', 0, 59],
  ['hour', 0, 23],
  ['day of month', 1, 31],
  ['month', 1, 12],
  ['day of week', 0, 7],
];
const NAMES: Record<number, string[]> = { 3: ['jan', 'feb', 'mar', 'apr', 'may', 'jun', 'jul', 'aug', 'sep', 'oct', 'nov', 'dec'], 4: ['sun', 'mon', 'tue', 'wed', 'thu', 'fri', 'sat'] };

/** Problems with one schedule field (empty when valid): lists, ranges, steps, names, as cron(8) reads them. */
export function fieldProblems(text: string, index: number): string[] {
  const [name, lo, hi] = FIELDS[index]!;
  const value = (v: string): number | undefined => {
    const i = NAMES[index]?.indexOf(v.toLowerCase());
    if (i !== undefined && i >= 0) return index === 3 ? i + 1 : i;
    return /^\d+$/.test(v) ? Number(v) : undefined;
  };
  const problems: string[] = [];
  for (const part of text.split(',')) {
    const m = /^(\*|([^-/]+)(?:-([^/]+))?)(?:\/(\d+))?$/.exec(part);
    if (!m) {
      problems.push(`${name}: cannot read "${part}"`);
      continue;
    }
    if (m[4] !== undefined && Number(m[4]) < 1) problems.push(`${name}: step must be at least 1`);
    if (m[1] === '*') continue;
    const a = value(m[2]!);
    const b = m[3] !== undefined ? value(m[3]) : a;
    if (a === undefined || b === undefined) problems.push(`${name}: "${part}" is not a number or name`);
    else if (a < lo || b > hi || a > b) problems.push(`${name}: "${part}" outside ${lo}-${hi}`);
  }
  return problems;
}

const crontab = readFileSync(join(ROOT, 'cron/llc-ops.crontab'), 'utf8');
const jobs = crontab.split('\n').filter((l) => l.trim() && !l.trim().startsWith('#') && !/^[A-Z_]+=/.test(l));
const vars = Object.fromEntries(crontab.split('\n').filter((l) => /^[A-Z_]+=/.test(l)).map((l) => [l.slice(0, l.indexOf('=')), l.slice(l.indexOf('=') + 1)]));

test('the schedule validator itself rejects bad fields', () => {
  assert.deepEqual(fieldProblems('*/15', 0), []);
  assert.deepEqual(fieldProblems('1-5,sun', 4), []);
  assert.deepEqual(fieldProblems('jan-mar', 3), []);
  assert.ok(fieldProblems('60', 0).length);
  assert.ok(fieldProblems('5-1', 1).length);
  assert.ok(fieldProblems('*/0', 0).length);
  assert.ok(fieldProblems('mon', 0).length);
});

test('the crontab sets PATH, CRON_TZ and the config explicitly', () => {
  assert.ok(vars.PATH?.split(':').includes('/usr/bin'));
  assert.equal(vars.CRON_TZ, 'UTC');
  assert.match(vars.OPS_CONFIG ?? '', /^\//, 'absolute config path');
  assert.ok(jobs.length >= 2);
});

for (const line of jobs) {
  test(`crontab line: ${line.slice(0, 60)}…`, async () => {
    const fields = line.trim().split(/\s+/);
    for (let i = 0; i < 5; i++) assert.deepEqual(fieldProblems(fields[i]!, i), [], `field ${i + 1} of: ${line}`);
    assert.equal(fields[5], 'root', 'system crontab format: user field');
    const command = fields.slice(6).join(' ');
    assert.match(command, /\bcd \/srv\/llc-ops &&/, 'runs in the checkout');
    assert.match(command, />> \/var\/log\/llc-ops\/[a-z-]+\.log 2>&1/, 'logs to a file');
    const cmds = findCommands('cron/llc-ops.crontab', command);
    assert.ok(cmds.length > 0);
    for (const c of cmds) {
      const mod = (await import(join(ROOT, 'scripts', `${c.script}.ts`))) as { spec: CommandSpec };
      assert.doesNotThrow(() => parseCommand(mod.spec, c.args), c.text);
    }
  });
}

/**
 * Run a crontab job's command as cron would (/bin/sh -c), in a scratch checkout and log dir, with an `npx` stand-in
 * that records each script it is asked to run and exits with FAIL_<script> (default 0). Returns what cron would
 * mail (the job's own output), and the scripts run, in order.
 */
function runJob(line: string, fail: Record<string, number>): { mailed: string; ran: string[]; logs: string } {
  const dir = mkdtempSync(join(tmpdir(), 'llc-cron-'));
  try {
    mkdirSync(join(dir, 'bin'));
    mkdirSync(join(dir, 'checkout'));
    writeFileSync(join(dir, 'bin', 'npx'), `#!/bin/sh\necho "$2" >> "${join(dir, 'calls')}"\nname=$(basename "$2" .ts | tr - _)\necho "a log line of $name"\neval "exit \\\${FAIL_$name:-0}"\n`, { mode: 0o755 });
    const command = line.trim().split(/\s+/).slice(6).join(' ').replaceAll('/srv/llc-ops', join(dir, 'checkout')).replaceAll('/var/log/llc-ops', join(dir, 'log'));
    const env: Record<string, string> = { PATH: `${join(dir, 'bin')}:/usr/bin:/bin` };
    for (const [script, code] of Object.entries(fail)) env[`FAIL_${script.replaceAll('-', '_')}`] = String(code);
    const r = spawnSync('/bin/sh', ['-c', command], { env, encoding: 'utf8' });
    assert.equal(r.stderr, '', 'nothing on stderr');
    const ran = existsSync(join(dir, 'calls')) ? readFileSync(join(dir, 'calls'), 'utf8').trim().split('\n').map((c) => c.replace(/^scripts\/|\.ts$/g, '')) : [];
    const logs = readdirSync(join(dir, 'log')).sort().join(' ');
    return { mailed: r.stdout.replaceAll(join(dir, 'log'), '/var/log/llc-ops'), ran, logs };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

test('nightly job, run by /bin/sh: rotate only after a successful backup-all, verify --checksums always; cron mails one line per failed step and nothing on success', () => {
  const nightly = jobs.find((l) => l.includes('backup-all'))!;
  const ok = runJob(nightly, {});
  assert.deepEqual(ok.ran, ['backup-all', 'rotate', 'verify-latest']);
  assert.equal(ok.mailed, '', 'a good night mails nothing');
  assert.equal(ok.logs, 'backup.log rotate.log verify.log');
  const backupFailed = runJob(nightly, { 'backup-all': 1 });
  assert.deepEqual(backupFailed.ran, ['backup-all', 'verify-latest'], 'no rotation after a failed backup');
  assert.equal(backupFailed.mailed, 'llc-ops: backup-all failed (exit 1), see /var/log/llc-ops/backup.log\n');
  const locked = runJob(nightly, { rotate: 3 });
  assert.deepEqual(locked.ran, ['backup-all', 'rotate', 'verify-latest']);
  assert.equal(locked.mailed, 'llc-ops: rotate failed (exit 3), see /var/log/llc-ops/rotate.log\n');
  const bad = runJob(nightly, { 'backup-all': 1, 'verify-latest': 4 });
  assert.equal(bad.mailed, 'llc-ops: backup-all failed (exit 1), see /var/log/llc-ops/backup.log\nllc-ops: verify-latest --checksums failed (exit 4), see /var/log/llc-ops/verify.log\n');
});

test('weekly job: verify-latest --deep on Sundays; a failed drill mails one line', () => {
  const weekly = jobs.find((l) => l.includes('--deep'))!;
  assert.equal(weekly.trim().split(/\s+/)[4], '0', 'on Sundays');
  assert.equal(runJob(weekly, {}).mailed, '');
  const failed = runJob(weekly, { 'verify-latest': 4 });
  assert.deepEqual(failed.ran, ['verify-latest']);
  assert.equal(failed.mailed, 'llc-ops: verify-latest --deep failed (exit 4), see /var/log/llc-ops/verify-deep.log\n');
});

test('systemd units name existing scripts; the backup service runs rotate after backup-all in one unit', () => {
  const dir = join(ROOT, 'cron/systemd');
  const files = readdirSync(dir);
  assert.ok(files.includes('llc-ops-backup.service') && files.includes('llc-ops-backup.timer'));
  const svc = readFileSync(join(dir, 'llc-ops-backup.service'), 'utf8');
  const starts = svc.split('\n').filter((l) => l.startsWith('ExecStart='));
  assert.deepEqual(starts.map((l) => /scripts\/([a-z-]+)\.ts/.exec(l)?.[1]), ['backup-all', 'rotate']);
  for (const f of files.filter((n) => n.endsWith('.timer'))) assert.match(readFileSync(join(dir, f), 'utf8'), /^OnCalendar=.+UTC$/m);
  // The verify after the backup is an ExecStopPost: it runs under the stop timeout, 90 s unless set.
  assert.match(svc, /^ExecStopPost=.*verify-latest\.ts --checksums$/m);
  const stop = /^TimeoutStopSec=(\d+)h$/m.exec(svc);
  assert.ok(stop && Number(stop[1]) >= 1, 'TimeoutStopSec of hours for the ExecStopPost verify');
});

const skip = requireTools(['/usr/lib/postgresql/15/bin/initdb', 'zstd', 'psql', 'pg_dump']);
let env: BackupEnv;
before(async () => {
  if (skip) return;
  env = await startBackupEnv();
  env.pg.sql('CREATE DATABASE app;');
  env.pg.sql('CREATE TABLE t (x int); INSERT INTO t VALUES (1);', 'app');
});
after(() => env?.destroy());

test('backup-all as cron runs it (env -i PATH=/usr/bin:/bin, no TTY): plain lines with timestamps, no ANSI, no spinner', { skip }, async () => {
  const config = env.config({ databases: ['app'], name: 'cron.yaml' });
  const r = await runScriptProcess('backup-all', ['--config', config], { cleanEnv: true, env: { PATH: '/usr/bin:/bin' }, cwd: env.dir });
  assert.equal(r.code, 0, r.stdout + r.stderr);
  const text = r.stdout + r.stderr;
  assert.doesNotMatch(text, /\x1b\[/, 'no ANSI escape codes');
  assert.doesNotMatch(text, /[⠋⠙⠹⠸⠼⠴⠦⠧⠇⠏]/, 'no spinner frames');
  const lines = r.stdout.trim().split('\n');
  assert.ok(lines.length >= 3);
  for (const l of lines) assert.match(l, /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}Z /, `timestamped: ${l}`);
  assert.match(r.stdout, /published /);
});
