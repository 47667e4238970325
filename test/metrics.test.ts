// Backup metrics for node_exporter's textfile collector: a failed run records the failure and keeps the last
// success; the file passes `promtool check metrics`; a real node_exporter serves it without a scrape error.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { requireTools } from './helpers/tools.ts';
import { runScriptProcess } from './helpers/scripts.ts';
import { startBackupEnv, type BackupEnv } from './helpers/backup-env.ts';
import { freePort } from '../lib/pg-sandbox.ts';
import { parseSamples, renderSamples } from '../lib/metrics.ts';
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
