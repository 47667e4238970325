// Prometheus textfile-collector files (DESIGN.md §9): rendered by a pure function, written atomically (temp file
// in the same directory, then rename) so node_exporter never reads half a file.
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { writeFileAtomic } from './fs-util.ts';
import { METRICS, type MetricName } from './metric-names.ts';

export interface Sample {
  metric: MetricName;
  labels?: Record<string, string>;
  value: number;
}

const escapeLabel = (v: string) => v.replace(/\\/g, '\\\\').replace(/\n/g, '\\n').replace(/"/g, '\\"');

/** Text exposition format: HELP and TYPE once per metric, samples grouped, trailing newline (node_exporter needs it). */
export function renderSamples(samples: Sample[]): string {
  const byName = new Map<string, Sample[]>();
  for (const s of samples) {
    const list = byName.get(s.metric.name) ?? [];
    list.push(s);
    byName.set(s.metric.name, list);
  }
  const lines: string[] = [];
  for (const [name, list] of byName) {
    lines.push(`# HELP ${name} ${list[0]!.metric.help}`, `# TYPE ${name} gauge`);
    for (const s of list) {
      const labels = Object.entries(s.labels ?? {});
      const l = labels.length ? `{${labels.map(([k, v]) => `${k}="${escapeLabel(v)}"`).join(',')}}` : '';
      lines.push(`${name}${l} ${Number.isFinite(s.value) ? s.value : 0}`);
    }
  }
  return `${lines.join('\n')}\n`;
}

/** Read back the samples of a metric from a previous file (to carry a last-success timestamp over a failed run). */
export function parseSamples(text: string, metric: MetricName): Map<string, number> {
  const out = new Map<string, number>();
  for (const line of text.split('\n')) {
    if (!line.startsWith(`${metric.name}{`) && !line.startsWith(`${metric.name} `)) continue;
    const m = /^([^\s{]+)(\{([^}]*)\})?\s+(\S+)/.exec(line);
    if (!m) continue;
    out.set(m[3] ?? '', Number(m[4]));
  }
  return out;
}

async function previousFile(dir: string, file: string): Promise<string> {
  return readFile(join(dir, file), 'utf8').catch(() => '');
}

export async function writeMetrics(dir: string, file: MetricName['file'], samples: Sample[]): Promise<void> {
  await writeFileAtomic(join(dir, file), renderSamples(samples), 0o644);
}

export interface BackupMetricsInput {
  ok: boolean;
  endedAt: Date;
  perSource: Record<string, { ok: boolean; durationMs: number; bytes: number }>;
  /** Every configured source, so a failed run still lists each one's last success. */
  sources: string[];
  /** The sources this run backed up (--only); default: all of `sources`. */
  ran?: string[];
}

/**
 * llc_backup.prom after a backup-all run. A source the run did not back up (--only) keeps its samples from the file
 * as they were: its last success still ages towards BackupStale. A run of some sources only that succeeded does
 * not clear a failed full run's status (BackupFailed stays until a full run succeeds); one that failed sets it.
 */
export async function writeBackupMetrics(dir: string, input: BackupMetricsInput): Promise<void> {
  const text = await previousFile(dir, METRICS.backupLastSuccessTimestamp.file);
  const before = parseSamples(text, METRICS.backupLastSuccessTimestamp);
  const sizes = parseSamples(text, METRICS.backupSize);
  const durations = parseSamples(text, METRICS.backupDuration);
  const ran = new Set(input.ran ?? input.sources);
  const partial = input.sources.some((s) => !ran.has(s));
  const previousStatus = parseSamples(text, METRICS.backupLastRunStatus).get('');
  const now = input.endedAt.getTime() / 1000;
  const samples: Sample[] = [
    { metric: METRICS.backupLastRunStatus, value: input.ok ? (partial && previousStatus !== undefined ? previousStatus : 1) : 0 },
    { metric: METRICS.backupLastRunTimestamp, value: now },
  ];
  for (const source of input.sources) {
    const key = `source="${source}"`;
    const r = ran.has(source) ? input.perSource[source] : undefined;
    const succeeded = input.ok && r?.ok;
    const last = succeeded ? now : before.get(key);
    // A source that never succeeded has no last-success sample: "absent" alerts as stale, a fake 0 would too but lies.
    if (last !== undefined) samples.push({ metric: METRICS.backupLastSuccessTimestamp, labels: { source }, value: last });
    const duration = r ? r.durationMs / 1000 : durations.get(key);
    if (duration !== undefined) samples.push({ metric: METRICS.backupDuration, labels: { source }, value: duration });
    const size = succeeded ? r!.bytes : sizes.get(key);
    if (size !== undefined) samples.push({ metric: METRICS.backupSize, labels: { source }, value: size });
  }
  await writeMetrics(dir, 'llc_backup.prom', samples);
}

/** verify-latest: one file for all levels, so a quick run keeps the last deep result (and the other way round). */
export async function writeVerifyMetrics(dir: string, input: { level: string; ok: boolean; endedAt: Date; newestSet?: Date }): Promise<void> {
  const text = await previousFile(dir, 'llc_verify.prom');
  const now = input.endedAt.getTime() / 1000;
  const samples: Sample[] = [];
  const levels = new Set<string>([input.level]);
  const prev = {
    status: parseSamples(text, METRICS.verifyLastRunStatus),
    run: parseSamples(text, METRICS.verifyLastRunTimestamp),
    success: parseSamples(text, METRICS.verifyLastSuccessTimestamp),
  };
  for (const key of [...prev.status.keys(), ...prev.success.keys()]) {
    const m = /^level="([^"]*)"$/.exec(key);
    if (m) levels.add(m[1]!);
  }
  for (const level of [...levels].sort()) {
    const key = `level="${level}"`;
    const mine = level === input.level;
    const status = mine ? (input.ok ? 1 : 0) : prev.status.get(key);
    const run = mine ? now : prev.run.get(key);
    const success = mine && input.ok ? now : prev.success.get(key);
    if (status !== undefined) samples.push({ metric: METRICS.verifyLastRunStatus, labels: { level }, value: status });
    if (run !== undefined) samples.push({ metric: METRICS.verifyLastRunTimestamp, labels: { level }, value: run });
    if (success !== undefined) samples.push({ metric: METRICS.verifyLastSuccessTimestamp, labels: { level }, value: success });
  }
  const newest = input.newestSet ? input.newestSet.getTime() / 1000 : parseSamples(text, METRICS.newestSetTimestamp).get('');
  if (newest !== undefined) samples.push({ metric: METRICS.newestSetTimestamp, value: newest });
  await writeMetrics(dir, 'llc_verify.prom', samples);
}

export async function writeRotateMetrics(dir: string, input: { ok: boolean; endedAt: Date; kept?: number; removed?: number }): Promise<void> {
  const samples: Sample[] = [
    { metric: METRICS.rotateLastRunStatus, value: input.ok ? 1 : 0 },
    { metric: METRICS.rotateLastRunTimestamp, value: input.endedAt.getTime() / 1000 },
  ];
  if (input.kept !== undefined) samples.push({ metric: METRICS.rotateSetsKept, value: input.kept });
  if (input.removed !== undefined) samples.push({ metric: METRICS.rotateSetsRemoved, value: input.removed });
  await writeMetrics(dir, 'llc_rotate.prom', samples);
}
