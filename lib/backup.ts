// One complete backup set of the configured sources: the body of backup-all, also used by migrate and rollback
// ("a backup first"). Publishes only if every source succeeded; otherwise removes the staging directory.
import { rm } from 'node:fs/promises';
import { join } from 'node:path';
import { acquireLock, type Lock } from './lock.ts';
import { baseManifest, cleanStaging, createStaging, listCompleteSets, publish, type Manifest } from './backup-set.ts';
import { formatBytes, formatDuration } from './output.ts';
import type { Ops } from './ops.ts';
import { backupRoot } from './ops.ts';
import { configuredSources } from './sources/index.ts';
import type { SourceName } from './sources/types.ts';
import { OpsError } from './errors.ts';
import { need } from './config.ts';
import { composeArgv } from './run.ts';

export interface BackupOptions {
  only?: SourceName[];
  tags?: string[];
  /** The caller already holds the lock (migrate/rollback). */
  lock?: Lock;
  command?: string;
}

export interface BackupOutcome {
  id: string;
  dir: string;
  manifest: Manifest;
  bytes: number;
  durationMs: number;
}

/** What a failed or finished run reports for monitoring: per-source status, even for a run that failed. */
export interface BackupReport {
  ok: boolean;
  outcome?: BackupOutcome;
  perSource: Record<string, { ok: boolean; durationMs: number; bytes: number }>;
  error?: unknown;
}

/**
 * backup.quiesce: services (e.g. workers) stopped before the first dump and started again afterwards, so the
 * stores are captured without writes in between. `stop` records what it stopped; `start` starts exactly those.
 */
async function quiesce(ops: Ops, action: 'stop' | 'start', stopped: string[]): Promise<void> {
  const services = action === 'stop' ? [...(ops.loaded.config.backup?.quiesce ?? [])] : [...stopped];
  if (services.length === 0) return;
  const compose = need(ops.sourceContext.compose, 'compose', 'for backup.quiesce');
  const out = ops.sourceContext.out;
  await out.step(`${action} ${services.join(', ')} (backup.quiesce)`, async () => {
    if (action === 'stop') stopped.push(...services); // before the call: a half-done stop is still started again
    // Starting them again must happen even after Ctrl-C: that runner is not stopped by the interrupt.
    await (action === 'start' ? ops.runner.uninterruptible() : ops.runner).capture({ argv: composeArgv(compose, [action, ...services]) });
    if (action === 'start') stopped.length = 0;
  });
}

export async function runBackup(ops: Ops, opts: BackupOptions = {}): Promise<BackupReport> {
  const { loaded, runner, sourceContext } = ops;
  const out = sourceContext.out;
  const root = backupRoot(loaded);
  const sources = await configuredSources(loaded, opts.only);
  const perSource: BackupReport['perSource'] = {};
  const started = performance.now();

  if (runner.dryRun) {
    const id = 'NEW-SET-ID';
    const dir = join(root, '.staging', id);
    out.plan(`create ${dir}, back up ${sources.map((s) => s.describe()).join('; ')}`);
    const quiet = loaded.config.backup?.quiesce ?? [];
    const compose = sourceContext.compose;
    if (quiet.length && compose) out.plan(`${runner.display({ argv: composeArgv(compose, ['stop', ...quiet]) })} (started again afterwards, whatever happens)`);
    for (const s of sources) await s.backup(sourceContext, dir);
    if (quiet.length && compose) out.plan(runner.display({ argv: composeArgv(compose, ['start', ...quiet]) }));
    out.plan(`write ${join(dir, 'manifest.json')} and rename ${dir} to ${join(root, id)}`);
    return { ok: true, perSource };
  }

  const quiesced: string[] = [];
  const lock = opts.lock ?? acquireLock(root, opts.command ?? 'backup-all', (msg) => out.warn(msg));
  let stagingDir: string | undefined;
  try {
    // We hold the lock, so any staging directory is a leftover of a run that died.
    for (const id of await cleanStaging(root)) out.warn(`removed the staging directory of an interrupted run: .staging/${id}`);
    const previous = (await listCompleteSets(root)).at(-1);
    const staging = await createStaging(root);
    stagingDir = staging.dir;
    out.info(`backup set ${staging.id}: ${sources.map((s) => s.name).join(', ')}`);
    const manifest = baseManifest(staging, opts.tags ?? []);
    await quiesce(ops, 'stop', quiesced);
    for (const source of sources) {
      const t0 = performance.now();
      sourceContext.previousSetDir = previous?.dir;
      sourceContext.previousManifest = previous?.manifest;
      try {
        const result = await source.backup(sourceContext, staging.dir);
        const durationMs = Math.round(performance.now() - t0);
        manifest.sources[source.name] = { ...result.record, durationMs };
        manifest.artifacts.push(...result.artifacts);
        perSource[source.name] = { ok: true, durationMs, bytes: result.artifacts.reduce((a, b) => a + b.size, 0) };
      } catch (err) {
        perSource[source.name] = { ok: false, durationMs: Math.round(performance.now() - t0), bytes: 0 };
        throw err;
      }
      if (sourceContext.signal.aborted) throw sourceContext.signal.reason;
    }
    manifest.finishedAt = new Date().toISOString();
    const dir = await publish(root, staging, manifest);
    stagingDir = undefined;
    const bytes = manifest.artifacts.reduce((a, b) => a + b.size, 0);
    const durationMs = Math.round(performance.now() - started);
    out.ok(`published ${dir}: ${manifest.artifacts.length} artifacts, ${formatBytes(bytes)}, ${formatDuration(durationMs)}`);
    return { ok: true, perSource, outcome: { id: staging.id, dir, manifest, bytes, durationMs } };
  } catch (err) {
    return { ok: false, perSource, error: err instanceof OpsError || err instanceof Error ? err : new Error(String(err)) };
  } finally {
    // Quiesced services come back whatever happened, before anything else.
    await quiesce(ops, 'start', quiesced).catch((err: Error) => out.error(`could not start ${quiesced.join(', ')} again: ${err.message}: start them by hand now`));
    // Nothing is published on failure: the partial set goes away.
    if (stagingDir) await rm(stagingDir, { recursive: true, force: true });
    if (!opts.lock) lock.release();
  }
}
