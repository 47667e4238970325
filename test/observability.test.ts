// Observability configs checked with the real Debian tools (promtool, amtool) and against each other: every alert
// is unit-tested firing and silent, every metric name is ours or a named exporter's, the dashboard and provisioning
// agree, the compose file pins its images and publishes nothing on 0.0.0.0, and the retired log shipper is nowhere.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { cpSync, existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, relative, resolve } from 'node:path';
import { stringify } from 'yaml';
import { METRICS, METRIC_NAMES } from '../lib/metric-names.ts';
import { parseImageRef } from '../lib/image-ref.ts';
import { requireTools } from './helpers/tools.ts';
import { ROOT } from './helpers/scripts.ts';
import {
  COMPOSE_OBS,
  COMPOSE_PROD,
  DOC,
  OBS,
  alertRules,
  allPanels,
  dashboardQueries,
  markdownTable,
  promqlMetricNames,
  readYaml,
  testedAlerts,
  ymlFiles,
  type Dashboard,
} from './helpers/observability.ts';

const RULE_FILES = ymlFiles(join(OBS, 'rules'));
const UNIT_TESTS = ymlFiles(join(OBS, 'tests'));
const LOKI_RULES_DIR = join(OBS, 'loki', 'rules', 'fake');
const LOKI_RULE_FILES = existsSync(LOKI_RULES_DIR) ? ymlFiles(LOKI_RULES_DIR) : [];
const DASHBOARDS_DIR = join(OBS, 'grafana', 'dashboards');
const doc = readFileSync(DOC, 'utf8');

function run(cmd: string, args: string[], cwd = OBS) {
  const r = spawnSync(cmd, args, { cwd, encoding: 'utf8' });
  return { code: r.status, out: `${r.stdout}${r.stderr}` };
}

interface ComposeService {
  image?: string;
  ports?: (string | { host_ip?: string; published?: string | number })[];
  healthcheck?: { test?: unknown; disable?: boolean };
  volumes?: (string | { type?: string; source?: string; target?: string })[];
  command?: string[] | string;
  secrets?: (string | { source: string; target?: string })[];
}
interface ComposeFile {
  services: Record<string, ComposeService>;
  secrets?: Record<string, { environment?: string; file?: string }>;
}
const compose = readYaml<ComposeFile>(COMPOSE_OBS);
const prod = readYaml<ComposeFile>(COMPOSE_PROD);

test('the configs exist where compose mounts them (this suite is not vacuous)', () => {
  assert.ok(RULE_FILES.length >= 2, `rule files: ${RULE_FILES.join(', ')}`);
  assert.ok(UNIT_TESTS.length >= 2, `unit test files: ${UNIT_TESTS.join(', ')}`);
  assert.ok(LOKI_RULE_FILES.length >= 1, 'the Loki ruler has a rule file for tenant "fake"');
  assert.ok(alertRules(RULE_FILES).length >= 10);
});

// ---- real tools ----------------------------------------------------------------------------------------------

test('promtool check config accepts prometheus.yml and its rule files', { skip: requireTools(['promtool']) }, () => {
  const r = run('promtool', ['check', 'config', 'prometheus.yml']);
  assert.equal(r.code, 0, r.out);
  assert.match(r.out, new RegExp(`SUCCESS: ${RULE_FILES.length} rule files found`), r.out);
});

test('promtool check rules accepts every rule file', { skip: requireTools(['promtool']) }, () => {
  const r = run('promtool', ['check', 'rules', ...RULE_FILES.map((f) => relative(OBS, f))]);
  assert.equal(r.code, 0, r.out);
});

test('promtool test rules: every unit test passes', { skip: requireTools(['promtool']) }, () => {
  const r = run('promtool', ['test', 'rules', ...UNIT_TESTS.map((f) => relative(OBS, f))]);
  assert.equal(r.code, 0, r.out);
  assert.equal((r.out.match(/SUCCESS/g) ?? []).length, UNIT_TESTS.length, r.out);
});

test('promtool test rules fails when a rule is broken (the unit tests bite)', { skip: requireTools(['promtool']) }, () => {
  const dir = mkdtempSync(join(tmpdir(), 'llc-obs-'));
  try {
    cpSync(join(OBS, 'rules'), join(dir, 'rules'), { recursive: true });
    cpSync(join(OBS, 'tests'), join(dir, 'tests'), { recursive: true });
    const file = join(dir, 'rules', 'llc-backup.yml');
    const text = readFileSync(file, 'utf8');
    assert.ok(text.includes('llc_backup_last_run_status == 0'));
    writeFileSync(file, text.replace('llc_backup_last_run_status == 0', 'llc_backup_last_run_status == 2'));
    const r = run('promtool', ['test', 'rules', 'tests/llc-backup.test.yml'], dir);
    assert.notEqual(r.code, 0, r.out);
    assert.match(r.out, /BackupFailed/);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('amtool check-config accepts alertmanager.yml', { skip: requireTools(['amtool']) }, () => {
  const r = run('amtool', ['check-config', 'alertmanager.yml']);
  assert.equal(r.code, 0, r.out);
  assert.match(r.out, /SUCCESS/);
});

// ---- alerts and their tests ----------------------------------------------------------------------------------

test('every Prometheus alert has a unit test that fires it and one where it stays silent', () => {
  const alerts = alertRules(RULE_FILES).map((a) => a.alert);
  assert.equal(new Set(alerts).size, alerts.length, 'alert names are unique');
  const { firing, silent } = testedAlerts(UNIT_TESTS);
  assert.deepEqual(alerts.filter((a) => !firing.has(a)), [], 'alerts without a firing test');
  assert.deepEqual(alerts.filter((a) => !silent.has(a)), [], 'alerts without a non-firing test');
  assert.deepEqual([...firing, ...silent].filter((a) => !alerts.includes(a)), [], 'tests for alerts that do not exist');
});

test('the unit tests load every rule file, by paths that exist', () => {
  const loaded = new Set<string>();
  for (const f of UNIT_TESTS) {
    for (const rf of readYaml<{ rule_files: string[] }>(f).rule_files) {
      const p = resolve(join(f, '..'), rf);
      assert.ok(existsSync(p), `${relative(ROOT, f)}: ${rf} does not exist`);
      loaded.add(p);
    }
  }
  assert.deepEqual(RULE_FILES.filter((f) => !loaded.has(f)), []);
});

test('the required alerts exist', () => {
  const names = new Set([...alertRules(RULE_FILES), ...alertRules(LOKI_RULE_FILES)].map((a) => a.alert));
  for (const a of ['TargetDown', 'ContainerDown', 'ContainerRestarting', 'PostgresDown', 'DiskAlmostFull', 'DiskFillingUp', 'ErrorRateSpike', 'BackupFailed', 'BackupStale', 'VerifyFailed']) {
    assert.ok(names.has(a), `missing alert ${a}`);
  }
  const rules = alertRules(RULE_FILES);
  const expr = (n: string) => rules.find((r) => r.alert === n)!.expr;
  assert.match(expr('BackupFailed'), new RegExp(`\\b${METRICS.backupLastRunStatus.name} == 0\\b`));
  assert.match(expr('BackupStale'), new RegExp(`time\\(\\) - ${METRICS.backupLastSuccessTimestamp.name}\\b`));
  assert.match(expr('VerifyFailed'), new RegExp(`\\b${METRICS.verifyLastRunStatus.name} == 0\\b`));
  assert.match(expr('PostgresDown'), /\bpg_up == 0\b/);
});

test('every alert has a severity, a summary and a runbook anchor that exists in docs/observability.md', () => {
  const headings = new Set(doc.split('\n').filter((l) => l.startsWith('### ')).map((l) => l.slice(4).trim()));
  for (const a of [...alertRules(RULE_FILES), ...alertRules(LOKI_RULE_FILES)]) {
    assert.match(a.labels?.severity ?? '', /^(critical|warning)$/, `${a.alert}: severity`);
    assert.ok(a.annotations?.summary, `${a.alert}: summary`);
    assert.equal(a.annotations?.runbook, `docs/observability.md#${a.alert.toLowerCase()}`, `${a.alert}: runbook`);
    assert.ok(headings.has(a.alert), `docs/observability.md has no "### ${a.alert}" section`);
  }
});

// ---- metric names ---------------------------------------------------------------------------------------------

test('promqlMetricNames finds metric names and skips functions, labels, ranges and keywords', () => {
  assert.deepEqual(promqlMetricNames('time() - max by (service) (max_over_time(container_last_seen{service!="", x="a{b}"}[1h])) > 120'), ['container_last_seen']);
  assert.deepEqual(promqlMetricNames('a_total / on (instance, device) group_left(job) b:rate5m offset 5m > 1e9 and bool c'), ['a_total', 'b:rate5m', 'c']);
  assert.deepEqual(promqlMetricNames('absent(llc_x) or sum without (le) (rate(h_bucket[5m:1m])) unless vector(1)'), ['h_bucket', 'llc_x']);
  assert.deepEqual(promqlMetricNames('count by (service) (count_over_time(m{restart_count!=""}[15m])) >= 3 * 24 * 3600'), ['m']);
});

const exporterTable = markdownTable(doc, 'Exporter metrics used by rules and dashboard');
const EXPORTER_METRICS = new Map(exporterTable.rows.map((r) => [r[0]!, r[1]!]));

function usedMetricNames(): Map<string, string[]> {
  const used = new Map<string, string[]>();
  const add = (name: string, where: string) => used.set(name, [...(used.get(name) ?? []), where]);
  for (const r of alertRules(RULE_FILES)) for (const n of promqlMetricNames(r.expr)) add(n, `rule ${r.alert}`);
  for (const f of readdirSync(DASHBOARDS_DIR).filter((n) => n.endsWith('.json'))) {
    const d = JSON.parse(readFileSync(join(DASHBOARDS_DIR, f), 'utf8')) as Dashboard;
    for (const q of dashboardQueries(d).filter((q) => q.uid === 'llc-prometheus')) for (const n of promqlMetricNames(q.expr)) add(n, `${f}: ${q.panel}`);
  }
  return used;
}

test('every metric in the rules and the dashboard is written by llc-ops or documented with its exporter', () => {
  const used = usedMetricNames();
  assert.ok(used.size >= 10, `found only ${[...used.keys()].join(', ')}`);
  const unknown = [...used].filter(([n]) => !METRIC_NAMES.includes(n) && !EXPORTER_METRICS.has(n)).map(([n, w]) => `${n} (${w.join('; ')})`);
  assert.deepEqual(unknown, [], 'metrics in neither lib/metric-names.ts nor the exporter table of docs/observability.md');
  assert.deepEqual([...used.keys()].filter((n) => n.startsWith('llc_') && !METRIC_NAMES.includes(n)), [], 'llc_ names outside the contract');
});

test('the exporter table names an exporter for every metric, and lists no metric nothing uses', () => {
  assert.deepEqual(exporterTable.header.slice(0, 2), ['metric', 'exporter']);
  const used = usedMetricNames();
  for (const [metric, exporter] of EXPORTER_METRICS) {
    assert.match(metric, /^[a-z_:][a-z0-9_:]*$/, `bad metric cell ${metric}`);
    assert.match(exporter, /(node_exporter|cAdvisor|postgres_exporter|blackbox_exporter|Prometheus|MinIO|Qdrant)/, `${metric}: exporter "${exporter}"`);
    assert.ok(!metric.startsWith('llc_'), `${metric} belongs in the llc-ops table`);
    assert.ok(used.has(metric), `${metric} is documented but no rule or panel uses it`);
  }
});

test("docs/observability.md's metrics table is exactly lib/metric-names.ts", () => {
  const t = markdownTable(doc, 'Metrics written by llc-ops');
  assert.deepEqual(t.header.slice(0, 3), ['metric', 'labels', 'file']);
  const documented = t.rows.map((r) => ({ name: r[0]!, labels: r[1] === '—' ? [] : r[1]!.split(',').map((s) => s.trim()), file: r[2]! }));
  const contract = Object.values(METRICS).map((m) => ({ name: m.name, labels: [...m.labels], file: m.file }));
  const byName = (a: { name: string }, b: { name: string }) => a.name.localeCompare(b.name);
  assert.deepEqual(documented.sort(byName), contract.sort(byName));
});

// ---- Grafana --------------------------------------------------------------------------------------------------

const datasources = readYaml<{ datasources: { uid: string; type: string; url: string }[] }>(join(OBS, 'grafana', 'provisioning', 'datasources', 'llc.yaml')).datasources;
const dashboardFiles = readdirSync(DASHBOARDS_DIR).filter((n) => n.endsWith('.json'));

test('Grafana: datasource uids are fixed and unique, dashboard uids unique, panel ids unique per dashboard', () => {
  const uids = datasources.map((d) => d.uid);
  assert.equal(new Set(uids).size, uids.length);
  assert.deepEqual([...uids].sort(), ['llc-alertmanager', 'llc-loki', 'llc-prometheus']);
  assert.ok(dashboardFiles.length >= 1);
  const dashUids = dashboardFiles.map((f) => (JSON.parse(readFileSync(join(DASHBOARDS_DIR, f), 'utf8')) as Dashboard).uid);
  assert.equal(new Set(dashUids).size, dashUids.length, 'dashboard uids are unique');
  for (const f of dashboardFiles) {
    const d = JSON.parse(readFileSync(join(DASHBOARDS_DIR, f), 'utf8')) as Dashboard;
    assert.ok(d.uid && d.uid.length <= 40, `${f}: uid`);
    const ids = allPanels(d.panels).map((p) => p.id);
    assert.ok(ids.every((id) => Number.isInteger(id)), `${f}: every panel has an id`);
    assert.equal(new Set(ids).size, ids.length, `${f}: duplicate panel ids ${ids.join(',')}`);
  }
});

test('Grafana: every datasource uid a dashboard uses is provisioned, with a matching type', () => {
  const byUid = new Map(datasources.map((d) => [d.uid, d.type]));
  for (const f of dashboardFiles) {
    const d = JSON.parse(readFileSync(join(DASHBOARDS_DIR, f), 'utf8')) as Dashboard;
    const refs = [
      ...allPanels(d.panels).flatMap((p) => [p.datasource, ...(p.targets ?? []).map((t) => t.datasource)]),
      ...(d.templating?.list ?? []).map((v) => v.datasource),
    ].filter((r): r is { type?: string; uid?: string } => r !== undefined);
    assert.ok(refs.length > 0);
    for (const r of refs) {
      assert.ok(r.uid && byUid.has(r.uid), `${f}: datasource uid ${r.uid} is not provisioned`);
      assert.equal(r.type, byUid.get(r.uid!), `${f}: datasource ${r.uid} type`);
    }
    for (const q of dashboardQueries(d)) assert.ok(q.uid, `${f}: panel "${q.panel}" query without datasource`);
  }
});

test('Grafana: the overview dashboard has the panels the plan names, ingest and latency from logs', () => {
  const d = JSON.parse(readFileSync(join(DASHBOARDS_DIR, 'llc-overview.json'), 'utf8')) as Dashboard;
  const panels = allPanels(d.panels);
  const find = (re: RegExp) => panels.find((p) => re.test(p.title));
  for (const re of [/ingest rate/i, /search latency/i, /error/i, /database size/i, /container/i, /backup age/i]) assert.ok(find(re), `no panel matching ${re}`);
  const q = (re: RegExp) => dashboardQueries(d).filter((x) => re.test(x.panel));
  assert.ok(q(/ingest rate/i).every((x) => x.uid === 'llc-loki' && /event="ingest\.document"/.test(x.expr)));
  assert.ok(q(/search latency/i).every((x) => x.uid === 'llc-loki' && /unwrap duration_ms/.test(x.expr)));
  assert.ok(q(/backup age/i).some((x) => x.expr.includes(METRICS.backupLastSuccessTimestamp.name)));
  // The expected log line format is documented where the panels point.
  assert.match(doc, /## Log lines the dashboard expects/);
  assert.match(doc, /"event":"ingest\.document"/);
  assert.match(doc, /"event":"search".*"duration_ms"/);
});

test('Grafana: provisioning points at the services and the mounted dashboard directory', () => {
  const urls = Object.fromEntries(datasources.map((d) => [d.uid, d.url]));
  assert.equal(urls['llc-prometheus'], 'http://prometheus:9090');
  assert.equal(urls['llc-loki'], 'http://loki:3100');
  assert.equal(urls['llc-alertmanager'], 'http://alertmanager:9093');
  const provider = readYaml<{ providers: { options: { path: string } }[] }>(join(OBS, 'grafana', 'provisioning', 'dashboards', 'llc.yaml')).providers[0]!;
  const grafanaMounts = (compose.services.grafana?.volumes ?? []).map(String);
  assert.ok(grafanaMounts.some((v) => v === `./observability/grafana/dashboards:${provider.options.path}:ro`), grafanaMounts.join(' '));
});

// ---- Loki and Alloy -------------------------------------------------------------------------------------------

interface LokiConfig {
  limits_config: { retention_period: string };
  compactor: { retention_enabled: boolean; delete_request_store: string };
  schema_config: { configs: { object_store: string; store: string }[] };
  ruler: { alertmanager_url: string; storage: { type: string; local: { directory: string } } };
}

test('Loki: single binary on the filesystem, retention enforced, ruler wired to Alertmanager and to our rule files', () => {
  const loki = readYaml<LokiConfig>(join(OBS, 'loki', 'loki.yaml'));
  assert.ok(loki.schema_config.configs.every((c) => c.object_store === 'filesystem' && c.store === 'tsdb'));
  assert.match(loki.limits_config.retention_period, /^\d+[hd]$/);
  assert.equal(loki.compactor.retention_enabled, true);
  assert.equal(loki.compactor.delete_request_store, 'filesystem');
  assert.equal(loki.ruler.alertmanager_url, 'http://alertmanager:9093');
  assert.equal(loki.ruler.storage.type, 'local');
  // Rules live in <directory>/<tenant>/; compose mounts our rules directory there.
  const mounts = (compose.services.loki?.volumes ?? []).map(String);
  assert.ok(mounts.includes(`./observability/loki/rules:${loki.ruler.storage.local.directory}:ro`), mounts.join(' '));
});

test('Loki ruler: the LogQL rules file exists, parses, and raises a per-service error-rate spike', () => {
  const rules = alertRules(LOKI_RULE_FILES);
  const spike = rules.find((r) => r.alert === 'ErrorRateSpike');
  assert.ok(spike, 'ErrorRateSpike rule');
  assert.match(spike.expr, /sum by \(service\) \(count_over_time\(\{project="llc"\}/);
  assert.match(spike.expr, /\boffset 5m\b/);
});

const ALLOY = readFileSync(join(OBS, 'alloy', 'config.alloy'), 'utf8');

test('Alloy: ships Docker logs with service, project and container labels from the compose labels', () => {
  assert.match(ALLOY, /loki\.source\.docker "llc"/);
  assert.match(ALLOY, /source_labels = \["__meta_docker_container_label_com_docker_compose_service"\]\s+target_label\s+= "service"/);
  assert.match(ALLOY, /source_labels = \["__meta_docker_container_label_com_docker_compose_project"\]\s+target_label\s+= "project"/);
  assert.match(ALLOY, /url = "http:\/\/loki:3100\/loki\/api\/v1\/push"/);
  // Braces balance: a cheap syntax guard, since Alloy itself does not run here.
  assert.equal((ALLOY.match(/\{/g) ?? []).length, (ALLOY.match(/\}/g) ?? []).length);
});

test('LogQL in the ruler and the dashboard selects only labels Alloy sets', () => {
  const labels = new Set([...ALLOY.matchAll(/target_label\s+= "([a-z_]+)"/g)].map((m) => m[1]!));
  const queries = [
    ...alertRules(LOKI_RULE_FILES).map((r) => r.expr),
    ...dashboardFiles.flatMap((f) => dashboardQueries(JSON.parse(readFileSync(join(DASHBOARDS_DIR, f), 'utf8')) as Dashboard).filter((q) => q.uid === 'llc-loki').map((q) => q.expr)),
  ];
  assert.ok(queries.length >= 4);
  for (const q of queries) {
    const selectors = [...q.matchAll(/\{([^}]*)\}/g)].map((m) => m[1]!).filter((s) => s.includes('='));
    assert.ok(selectors.length > 0, q);
    for (const s of selectors) for (const m of s.matchAll(/([a-z_]+)\s*(=~|!~|!=|=)/g)) assert.ok(labels.has(m[1]!), `label ${m[1]} in ${q}`);
  }
});

// ---- compose ------------------------------------------------------------------------------------------------

test('compose.observability.yaml: every image pinned to an exact version, nothing floating', () => {
  const services = Object.entries(compose.services);
  assert.ok(services.length >= 9);
  for (const [name, svc] of services) {
    assert.ok(svc.image, `${name}: image`);
    const parsed = parseImageRef(svc.image);
    assert.ok(parsed.ok, `${name}: ${svc.image}: ${parsed.ok ? '' : parsed.error}`);
    if (!parsed.ok) continue;
    assert.ok(parsed.ref.tag, `${name}: no tag`);
    assert.match(parsed.ref.tag!, /\d+\.\d+\.\d+/, `${name}: tag ${parsed.ref.tag} is not an exact version`);
    assert.ok(!/^(latest|main|stable|edge)$/.test(parsed.ref.tag!), `${name}: floating tag`);
  }
});

test('compose.observability.yaml: ports only on 127.0.0.1, healthchecks everywhere, mounts exist', () => {
  for (const [name, svc] of Object.entries(compose.services)) {
    for (const p of svc.ports ?? []) {
      if (typeof p === 'string') assert.match(p, /^127\.0\.0\.1:\d+:\d+$/, `${name}: port ${p}`);
      else assert.equal(p.host_ip, '127.0.0.1', `${name}: port ${JSON.stringify(p)}`);
    }
    assert.ok(svc.healthcheck?.test && !svc.healthcheck.disable, `${name}: healthcheck`);
    for (const v of svc.volumes ?? []) {
      const src = typeof v === 'string' ? v.split(':')[0]! : (v.source ?? '');
      if (src.startsWith('./')) assert.ok(existsSync(join(ROOT, 'compose', src)), `${name}: ${src} does not exist`);
    }
    for (const s of svc.secrets ?? []) {
      const source = typeof s === 'string' ? s : s.source;
      assert.ok(compose.secrets?.[source]?.environment, `${name}: secret ${source} is defined from the environment`);
    }
  }
});

test('compose.observability.yaml: the textfile directory is shared with the host, Alertmanager has no gossip port', () => {
  const ne = compose.services['node-exporter']!;
  const mount = (ne.volumes ?? []).map(String).find((v) => v.startsWith('/var/lib/node_exporter/textfile:'));
  assert.ok(mount, 'node-exporter mounts /var/lib/node_exporter/textfile');
  const target = mount.split(':')[1];
  assert.ok((ne.command as string[]).includes(`--collector.textfile.directory=${target}`));
  assert.ok((compose.services.alertmanager!.command as string[]).includes('--cluster.listen-address='));
  // The same directory the design names for the scripts (DESIGN.md §3, monitoring.textfileDir).
  assert.match(doc, /textfileDir: \/var\/lib\/node_exporter\/textfile/);
});

test('prometheus.yml: scrape targets are services of the two compose files', () => {
  const cfg = readYaml<{ scrape_configs: { job_name: string; static_configs: { targets: string[] }[]; relabel_configs?: { replacement?: string; target_label?: string }[] }[] }>(join(OBS, 'prometheus.yml'));
  const services = new Set([...Object.keys(compose.services), ...Object.keys(prod.services), 'localhost']);
  const hostOf = (t: string) => new URL(t.includes('://') ? t : `http://${t}`).hostname;
  for (const job of cfg.scrape_configs) {
    for (const t of job.static_configs.flatMap((s) => s.targets)) assert.ok(services.has(hostOf(t)), `${job.job_name}: ${t}`);
    for (const r of job.relabel_configs ?? []) if (r.target_label === '__address__') assert.ok(services.has(hostOf(r.replacement!)), `${job.job_name}: ${r.replacement}`);
  }
  const jobs = cfg.scrape_configs.map((j) => j.job_name);
  for (const j of ['node', 'cadvisor', 'postgres', 'qdrant', 'minio', 'probe-http']) assert.ok(jobs.includes(j), `job ${j}`);
  // The Qdrant key comes from a file compose mounts over the (empty) placeholder, never from the config itself.
  const placeholder = join(OBS, 'secrets', 'qdrant-api-key');
  assert.equal(statSync(placeholder).size, 0, 'the committed Qdrant key placeholder must stay empty');
  const promSecrets = compose.services.prometheus!.secrets ?? [];
  assert.ok(promSecrets.some((s) => typeof s !== 'string' && s.target === '/etc/prometheus/secrets/qdrant-api-key'));
});

test('check-pinning passes on compose.observability.yaml', { skip: existsSync(join(ROOT, 'scripts', 'check-pinning.ts')) ? undefined : 'scripts/check-pinning.ts not written yet' }, () => {
  const r = spawnSync(process.execPath, ['--import', 'tsx', join(ROOT, 'scripts', 'check-pinning.ts'), 'compose/compose.observability.yaml'], { cwd: ROOT, encoding: 'utf8' });
  assert.equal(r.status, 0, `${r.stdout}${r.stderr}`);
});

// ---- the retired log shipper ----------------------------------------------------------------------------------

// Its name is spelled apart so this file does not match itself.
const RETIRED_SHIPPER = ['prom', 'tail'].join('');

test(`${RETIRED_SHIPPER} appears nowhere, except in docs that say it is not used`, () => {
  const word = RETIRED_SHIPPER;
  const skip = new Set(['node_modules', '.git', '.tmp', 'package-lock.json']);
  const hits: string[] = [];
  const walk = (dir: string) => {
    for (const e of readdirSync(dir, { withFileTypes: true })) {
      if (skip.has(e.name)) continue;
      const p = join(dir, e.name);
      if (e.isDirectory()) walk(p);
      else if (statSync(p).size < 2_000_000) {
        readFileSync(p, 'utf8')
          .split('\n')
          .forEach((line, i) => {
            if (!line.toLowerCase().includes(word)) return;
            const rel = relative(ROOT, p);
            const allowed = rel.startsWith('docs/') && rel.endsWith('.md') && /not used|end of life|replaces it/i.test(line);
            if (!allowed) hits.push(`${rel}:${i + 1}: ${line.trim()}`);
          });
      }
    }
  };
  walk(ROOT);
  assert.deepEqual(hits, []);
  assert.match(doc, new RegExp(`${word} is not used`, 'i'));
});

// Keep `stringify` honest for the live test's copies: a rules file survives a YAML round trip unchanged in meaning.
test('rule files survive a YAML round trip (the live test rewrites copies of them)', { skip: requireTools(['promtool']) }, () => {
  const dir = mkdtempSync(join(tmpdir(), 'llc-obs-rt-'));
  try {
    for (const f of RULE_FILES) writeFileSync(join(dir, f.split('/').pop()!), stringify(readYaml(f)));
    const r = run('promtool', ['check', 'rules', ...readdirSync(dir).map((n) => join(dir, n))]);
    assert.equal(r.code, 0, r.out);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
