// Backup metrics for node_exporter's textfile collector: a failed run records the failure and keeps the last
// success; the file passes `promtool check metrics`; a real node_exporter serves it without a scrape error.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { requireTools } from './helpers/tools.ts';
import { runScriptProcess } from './helpers/scripts.ts';
import { startBackupEnv, type BackupEnv } from './helpers/backup-env.ts';
import { freePort } from '../lib/pg-sandbox.ts';
import { parseSamples, renderSamples, writeBackupMetrics } from '../lib/metrics.ts';
import { METRICS } from '../lib/metric-names.ts';

const skip = requireTools(['/usr/lib/postgresql/15/bin/initdb', 'zstd', 'promtool', 'prometheus-node-exporter']);
let env: BackupEnv;
before(async () => {
  if (skip) return;
  env = await startBackupEnv();
  env.pg.sql('CREATE DATABASE app;');
});
after(() => env?.destroy());

test('rendering: HELP/TYPE once, labels escaped, trailing newline; parsing reads it back', () => {
  const text = renderSamples([
    { metric: METRICS.backupSize, labels: { source: 'a"b\\c' }, value: 5 },
    { metric: METRICS.backupSize, labels: { source: 'postgres' }, value: 7 },
  ]);
  assert.equal(text.match(/# HELP llc_backup_size_bytes/g)?.length, 1);
  assert.ok(text.endsWith('\n'));
  assert.match(text, /llc_backup_size_bytes\{source="a\\"b\\\\c"\} 5/);
  assert.equal(parseSamples(text, METRICS.backupSize).get('source="postgres"'), 7);
});

test('a failed backup-all: status 0, last success unchanged; promtool and a real node_exporter accept the file', { skip }, async () => {
  const config = env.config({ databases: ['app'], name: 'metrics.yaml' });
  const ok = await runScriptProcess('backup-all', ['--config', config]);
  assert.equal(ok.code, 0, ok.stdout + ok.stderr);
  const file = join(env.textfileDir, 'llc_backup.prom');
  const first = readFileSync(file, 'utf8');
  const success = parseSamples(first, METRICS.backupLastSuccessTimestamp).get('source="postgres"');
  assert.ok(success && success > 0);
  assert.match(first, /^llc_backup_last_run_status 1$/m);
  env.pg.stop();
  await sleep(1100); // a later run timestamp than the successful one
  const failed = await runScriptProcess('backup-all', ['--config', config]);
  assert.equal(failed.code, 1);
  const text = readFileSync(file, 'utf8');
  assert.match(text, /^llc_backup_last_run_status 0$/m);
  assert.equal(parseSamples(text, METRICS.backupLastSuccessTimestamp).get('source="postgres"'), success, 'last success unchanged');
  assert.ok(parseSamples(text, METRICS.backupLastRunTimestamp).get('')! > success!);
  const check = spawnSync('promtool', ['check', 'metrics'], { input: text, encoding: 'utf8' });
  assert.equal(check.status, 0, check.stdout + check.stderr);
  const port = await freePort();
  const exporter = spawn('prometheus-node-exporter', [`--web.listen-address=127.0.0.1:${port}`, `--collector.textfile.directory=${env.textfileDir}`, '--collector.disable-defaults', '--collector.textfile'], { stdio: 'ignore' });
  try {
    let page = '';
    for (let i = 0; i < 100 && !page; i++) {
      page = await fetch(`http://127.0.0.1:${port}/metrics`).then((r) => r.text(), () => '');
      if (!page) await sleep(100);
    }
    assert.match(page, /^node_textfile_scrape_error 0$/m);
    assert.match(page, /^llc_backup_last_run_status 0$/m);
    assert.match(page, /^llc_backup_last_success_timestamp_seconds\{source="postgres"\} /m);
  } finally {
    exporter.kill();
  }
});

test('a --only run keeps the samples of the sources it did not back up; its success does not clear a failed full run', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'llc-metrics-'));
  try {
    const file = join(dir, 'llc_backup.prom');
    const read = (metric: (typeof METRICS)[keyof typeof METRICS]) => parseSamples(readFileSync(file, 'utf8'), metric);
    const all = ['postgres', 'qdrant', 's3'];
    const t = (s: string) => new Date(`2026-11-2${s}Z`);
    const run = (bytes: number) => ({ ok: true, durationMs: 2000, bytes });
    await writeBackupMetrics(dir, { ok: true, endedAt: t('3T02:30:00'), perSource: { postgres: run(10), qdrant: run(20), s3: run(30) }, sources: all });
    // The next night's full run fails on s3: status 0, every last success kept.
    await writeBackupMetrics(dir, { ok: false, endedAt: t('4T02:30:00'), perSource: { postgres: run(11), qdrant: run(21), s3: { ok: false, durationMs: 500, bytes: 0 } }, sources: all });
    assert.equal(read(METRICS.backupLastRunStatus).get(''), 0);
    // A pre-migration backup of PostgreSQL only succeeds: its own samples move, the others stay, and the status stays 0.
    await writeBackupMetrics(dir, { ok: true, endedAt: t('4T09:00:00'), perSource: { postgres: { ok: true, durationMs: 4000, bytes: 12 } }, sources: all, ran: ['postgres'] });
    const last = read(METRICS.backupLastSuccessTimestamp);
    assert.equal(last.get('source="postgres"'), t('4T09:00:00').getTime() / 1000);
    assert.equal(last.get('source="qdrant"'), t('3T02:30:00').getTime() / 1000, 'not dropped: it still ages towards BackupStale');
    assert.equal(last.get('source="s3"'), t('3T02:30:00').getTime() / 1000);
    assert.deepEqual([...read(METRICS.backupSize).entries()].sort(), [['source="postgres"', 12], ['source="qdrant"', 20], ['source="s3"', 30]]);
    assert.equal(read(METRICS.backupDuration).get('source="s3"'), 0.5, 'the last duration of a source not run is kept');
    assert.equal(read(METRICS.backupLastRunStatus).get(''), 0, 'BackupFailed stays until a full run succeeds');
    // A failed --only run sets it; a full run that succeeds clears it.
    await writeBackupMetrics(dir, { ok: false, endedAt: t('4T10:00:00'), perSource: { s3: { ok: false, durationMs: 100, bytes: 0 } }, sources: all, ran: ['s3'] });
    assert.equal(read(METRICS.backupLastRunStatus).get(''), 0);
    await writeBackupMetrics(dir, { ok: true, endedAt: t('5T02:30:00'), perSource: { postgres: run(13), qdrant: run(23), s3: run(33) }, sources: all });
    assert.equal(read(METRICS.backupLastRunStatus).get(''), 1);
    // On a fresh host the first run may be a --only run: it reports its success.
    const fresh = mkdtempSync(join(tmpdir(), 'llc-metrics-'));
    await writeBackupMetrics(fresh, { ok: true, endedAt: t('5T03:00:00'), perSource: { postgres: run(1) }, sources: all, ran: ['postgres'] });
    assert.equal(parseSamples(readFileSync(join(fresh, 'llc_backup.prom'), 'utf8'), METRICS.backupLastRunStatus).get(''), 1);
    assert.equal(parseSamples(readFileSync(join(fresh, 'llc_backup.prom'), 'utf8'), METRICS.backupLastSuccessTimestamp).size, 1);
    rmSync(fresh, { recursive: true, force: true });
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
