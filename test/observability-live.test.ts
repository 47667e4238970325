// The alert path end to end on 127.0.0.1, with real parts only: backup-all fails against a stopped PostgreSQL and
// writes its textfile → node_exporter serves it → Prometheus (our config and rules, `for:` shortened in this copy
// only) fires BackupFailed → Alertmanager (our routing) delivers it to a webhook receiver run by this test.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { createServer, type Server } from 'node:http';
import { cpSync, mkdirSync, mkdtempSync, openSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { stringify } from 'yaml';
import { findPgBin, freePort, PG_INSTALL_HINT } from '../lib/pg-sandbox.ts';
import { METRICS } from '../lib/metric-names.ts';
import { requireTools } from './helpers/tools.ts';
import { runScriptProcess } from './helpers/scripts.ts';
import { startBackupEnv } from './helpers/backup-env.ts';
import { OBS, readYaml, withShortFor, ymlFiles, type RuleFile } from './helpers/observability.ts';

const TOOLS = ['prometheus', 'prometheus-alertmanager', 'prometheus-node-exporter'];

function skipReason(): string | undefined {
  const missing = requireTools(TOOLS);
  if (missing) return missing;
  if (findPgBin()) return undefined;
  if (process.env.CI) throw new Error(`CI: ${PG_INSTALL_HINT}`);
  return PG_INSTALL_HINT;
}

interface WebhookAlert {
  status: string;
  labels: Record<string, string>;
  annotations: Record<string, string>;
}

/** Poll until `check` returns a value; the deadline only guards against a hang, it asserts nothing about speed. */
async function waitFor<T>(what: string, check: () => Promise<T | undefined> | T | undefined, deadlineMs: number, logs: () => string): Promise<T> {
  const end = Date.now() + deadlineMs;
  for (;;) {
    const v = await Promise.resolve(check()).catch(() => undefined);
    if (v !== undefined) return v;
    if (Date.now() > end) throw new Error(`gave up waiting for ${what}\n${logs()}`);
    await new Promise((r) => setTimeout(r, 250));
  }
}

async function httpText(url: string): Promise<string | undefined> {
  const r = await fetch(url);
  return r.ok ? r.text() : undefined;
}

function startProcess(cmd: string, args: string[], logFile: string, procs: ChildProcess[]): ChildProcess {
  const fd = openSync(logFile, 'a');
  const child = spawn(cmd, args, { stdio: ['ignore', fd, fd] });
  procs.push(child);
  return child;
}

async function stopProcess(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const exited = new Promise<void>((r) => child.once('exit', () => r()));
  child.kill('SIGTERM');
  const killer = setTimeout(() => child.kill('SIGKILL'), 5000);
  await exited;
  clearTimeout(killer);
}

interface AmConfig {
  route: { group_wait?: string; group_interval?: string; repeat_interval?: string; routes?: AmConfig['route'][] };
  receivers: { name: string; webhook_configs?: { url: string }[] }[];
}

/** Our alertmanager.yml with the webhook pointed at the test and the grouping waits cut to a second. */
function testAlertmanagerConfig(webhookUrl: string): AmConfig {
  const cfg = readYaml<AmConfig>(join(OBS, 'alertmanager.yml'));
  const shorten = (r: AmConfig['route']) => {
    r.group_wait = '1s';
    r.group_interval = '1s';
    for (const sub of r.routes ?? []) {
      if (sub.group_wait) sub.group_wait = '1s';
      if (sub.group_interval) sub.group_interval = '1s';
      shorten(sub);
    }
  };
  shorten(cfg.route);
  for (const rcv of cfg.receivers) for (const w of rcv.webhook_configs ?? []) w.url = webhookUrl;
  return cfg;
}

interface PromConfig {
  global: Record<string, unknown>;
  alerting: { alertmanagers: { static_configs: { targets: string[] }[] }[] };
  rule_files: string[];
  scrape_configs: { job_name: string; static_configs: { targets: string[]; labels?: Record<string, string> }[] }[];
}

/** Our prometheus.yml with 1 s intervals, only the node job (aimed at the test's node_exporter), the test's Alertmanager. */
function testPrometheusConfig(nodeExporter: string, alertmanager: string): PromConfig {
  const cfg = readYaml<PromConfig>(join(OBS, 'prometheus.yml'));
  const node = cfg.scrape_configs.find((j) => j.job_name === 'node');
  assert.ok(node, 'prometheus.yml has the node job');
  node.static_configs = node.static_configs.map((s) => ({ ...s, targets: [nodeExporter] }));
  cfg.scrape_configs = [node];
  cfg.global = { ...cfg.global, scrape_interval: '1s', scrape_timeout: '1s', evaluation_interval: '1s' };
  cfg.alerting = { alertmanagers: [{ static_configs: [{ targets: [alertmanager] }] }] };
  return cfg;
}

test('live: a failed backup-all reaches the webhook as BackupFailed via node_exporter, Prometheus and Alertmanager', { skip: skipReason(), timeout: 180_000 }, async () => {
  const env = await startBackupEnv();
  const work = mkdtempSync(join(tmpdir(), 'llc-obs-live-'));
  const procs: ChildProcess[] = [];
  const received: WebhookAlert[] = [];
  let server: Server | undefined;
  const logs = () =>
    ['node_exporter', 'prometheus', 'alertmanager']
      .map((n) => {
        try {
          return `--- ${n} log (tail) ---\n${readFileSync(join(work, `${n}.log`), 'utf8').split('\n').slice(-15).join('\n')}`;
        } catch {
          return `--- ${n}: no log ---`;
        }
      })
      .join('\n') + `\n--- webhook received: ${JSON.stringify(received)}`;
  try {
    // 1. A real failure: PostgreSQL is stopped, so backup-all fails and writes status 0 (DESIGN.md §9).
    const config = env.config({ databases: ['postgres'] });
    env.pg.stop();
    const backup = await runScriptProcess('backup-all', ['--config', config]);
    assert.equal(backup.code, 1, `backup-all should fail with exit 1\n${backup.stdout}\n${backup.stderr}`);
    const textfile = readFileSync(join(env.textfileDir, METRICS.backupLastRunStatus.file), 'utf8');
    assert.match(textfile, new RegExp(`^${METRICS.backupLastRunStatus.name} 0$`, 'm'));

    // 2. The webhook receiver: Alertmanager's webhook JSON (version 4).
    server = createServer((req, res) => {
      let body = '';
      req.setEncoding('utf8').on('data', (d: string) => (body += d));
      req.on('end', () => {
        try {
          received.push(...(JSON.parse(body) as { alerts: WebhookAlert[] }).alerts);
        } catch {
          // not a webhook payload: ignored, the assertion below decides
        }
        res.writeHead(200).end();
      });
    });
    await new Promise<void>((r) => server!.listen(0, '127.0.0.1', () => r()));
    const addr = server.address();
    assert.ok(addr && typeof addr === 'object');
    const webhookUrl = `http://127.0.0.1:${addr.port}/llc-alerts`;

    // 3. node_exporter with the textfile collector only, on the backup's textfile directory.
    const nePort = await freePort();
    startProcess('prometheus-node-exporter', [`--web.listen-address=127.0.0.1:${nePort}`, '--collector.disable-defaults', '--collector.textfile', `--collector.textfile.directory=${env.textfileDir}`], join(work, 'node_exporter.log'), procs);
    const metrics = await waitFor('node_exporter to serve the textfile', async () => {
      const t = await httpText(`http://127.0.0.1:${nePort}/metrics`);
      return t?.includes(METRICS.backupLastRunStatus.name) ? t : undefined;
    }, 30_000, logs);
    assert.match(metrics, /^node_textfile_scrape_error 0$/m);
    assert.match(metrics, new RegExp(`^${METRICS.backupLastRunStatus.name} 0$`, 'm'));

    // 4. Alertmanager: our routing, the test's webhook, no gossip port (it would listen on 0.0.0.0:9094).
    const amPort = await freePort();
    const amDir = join(work, 'alertmanager');
    mkdirSync(amDir);
    writeFileSync(join(amDir, 'alertmanager.yml'), stringify(testAlertmanagerConfig(webhookUrl)));
    startProcess('prometheus-alertmanager', [`--config.file=${join(amDir, 'alertmanager.yml')}`, `--storage.path=${join(amDir, 'data')}`, `--web.listen-address=127.0.0.1:${amPort}`, '--cluster.listen-address='], join(work, 'alertmanager.log'), procs);
    await waitFor('Alertmanager to be ready', () => httpText(`http://127.0.0.1:${amPort}/-/ready`), 30_000, logs);

    // 5. Prometheus: our rules with `for:` shortened in this copy only, 1 s scrape and evaluation.
    const promDir = join(work, 'prometheus');
    mkdirSync(join(promDir, 'rules'), { recursive: true });
    for (const f of ymlFiles(join(OBS, 'rules'))) writeFileSync(join(promDir, 'rules', f.split('/').pop()!), stringify(withShortFor(readYaml<RuleFile>(f), '1s')));
    cpSync(join(OBS, 'secrets'), join(promDir, 'secrets'), { recursive: true });
    writeFileSync(join(promDir, 'prometheus.yml'), stringify(testPrometheusConfig(`127.0.0.1:${nePort}`, `127.0.0.1:${amPort}`)));
    const promPort = await freePort();
    startProcess('prometheus', [`--config.file=${join(promDir, 'prometheus.yml')}`, `--storage.tsdb.path=${join(promDir, 'data')}`, `--web.listen-address=127.0.0.1:${promPort}`], join(work, 'prometheus.log'), procs);

    // 6. Prometheus discovers Alertmanager in 5 s batches (2.42): the first delivery takes several seconds.
    const alert = await waitFor('BackupFailed at the webhook', () => received.find((a) => a.labels.alertname === 'BackupFailed' && a.status === 'firing'), 90_000, logs);
    assert.equal(alert.labels.severity, 'critical');
    assert.equal(alert.labels.job, 'node');
    assert.equal(alert.labels.service, 'node-exporter');
    assert.equal(alert.annotations.runbook, 'docs/observability.md#backupfailed');
    // The run never succeeded, so no source has a last-success sample: nothing claims a fresh backup.
    const series = await httpText(`http://127.0.0.1:${promPort}/api/v1/query?query=${encodeURIComponent(METRICS.backupLastSuccessTimestamp.name)}`);
    assert.deepEqual((JSON.parse(series!) as { data: { result: unknown[] } }).data.result, []);
  } finally {
    for (const p of procs.reverse()) await stopProcess(p);
    if (server) await new Promise<void>((r) => server!.close(() => r()));
    env.destroy();
    rmSync(work, { recursive: true, force: true });
  }
});
