// rotate: applies the retention policy (backup.retention) to complete backup sets; prints keep/remove with reasons.
// Example: npx tsx scripts/rotate.ts --dry-run
import { rename, rm, mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import { runScript, startIfEntry, type CommandSpec } from '../lib/cli.ts';
import { backupRoot, setUp } from '../lib/ops.ts';
import { need } from '../lib/config.ts';
import { acquireLock } from '../lib/lock.ts';
import { cleanStaging, listCompleteSets, staleStaging, STAGING } from '../lib/backup-set.ts';
import { incompleteSets } from '../lib/verify.ts';
import { planRetentionByGroup, PolicyError, type RetentionPolicy } from '../lib/retention.ts';
import { writeRotateMetrics } from '../lib/metrics.ts';
import { EXIT, LockedError, RefusedError, UsageError } from '../lib/errors.ts';

export const spec: CommandSpec = {
  name: 'rotate',
  summary: 'apply the retention policy: remove complete sets no rule keeps (restic forget semantics)',
  examples: ['npx tsx scripts/rotate.ts --dry-run', 'npx tsx scripts/rotate.ts', 'npx tsx scripts/rotate.ts --json'],
  mutating: true,
  flags: {},
  notes: [
    'Only complete sets count; the newest is always kept, sets dated in the future too. Incomplete sets are reported, never removed.',
    'The policy applies to each group of sets holding the same sources on its own (restic groups by host and paths): the PostgreSQL-only sets taken before a migration never push out the full sets.',
    'Staging directories older than a day are removed.',
  ],
};

const DAY = 86_400_000;

export function main(argv: string[]): Promise<number> {
  return runScript(spec, argv, async (ctx) => {
    const { loaded } = setUp(ctx);
    const out = ctx.out;
    const root = backupRoot(loaded);
    const policy = need(loaded.config.backup?.retention, 'backup.retention', 'for rotate') as RetentionPolicy;
    const timeZone = loaded.config.backup?.timezone ?? Intl.DateTimeFormat().resolvedOptions().timeZone;
    try {
      new Intl.DateTimeFormat('en-US', { timeZone });
    } catch {
      throw new UsageError(`invalid config: backup.timezone: unknown time zone "${timeZone}"`);
    }
    const textfileDir = loaded.config.monitoring?.textfileDir;
    let lock: ReturnType<typeof acquireLock> | undefined;
    try {
      // Inside the try: a lock that cannot be written (a full disk, when rotate is needed most) is a failed run the
      // metrics show. Another run holding it is not (that run reports for itself).
      lock = ctx.dryRun ? undefined : acquireLock(root, 'rotate', (m) => out.warn(m));
      if (!ctx.dryRun) for (const id of await cleanStaging(root, DAY)) out.warn(`removed a staging directory older than a day: ${STAGING}/${id}`);
      else for (const id of await staleStaging(root, DAY)) out.plan(`remove  ${STAGING}/${id} (a staging directory older than a day)`);
      for (const s of await incompleteSets(root)) out.warn(`not counted and not removed: incomplete set ${s.id} (${s.problems.join('; ')})`);
      const sets = await listCompleteSets(root);
      let plan;
      try {
        plan = planRetentionByGroup(sets.map((s) => ({ id: s.id, time: new Date(s.manifest.startedAt), group: Object.keys(s.manifest.sources).sort().join('+') || 'no sources' })), policy, { timeZone, now: new Date() });
      } catch (err) {
        if (err instanceof PolicyError) throw /empty/.test(err.message) ? new UsageError(`invalid config: backup.retention: ${err.message}`) : new RefusedError(err.message);
        throw err;
      }
      out.info(`${sets.length} complete sets; policy ${JSON.stringify(policy)} in ${timeZone}`);
      for (const k of plan.keep) out.info(`keep    ${k.id}  ${k.reasons.join('; ')}`);
      for (const r of plan.remove) out.plan(`remove  ${r.id}`);
      if (!ctx.dryRun) {
        for (const r of plan.remove) {
          // Out of the listing first (an atomic rename), then delete: a run killed mid-delete leaves no half set.
          const trash = join(root, STAGING, `removing-${r.id}`);
          await mkdir(join(root, STAGING), { recursive: true, mode: 0o700 });
          await rename(join(root, r.id), trash);
          await rm(trash, { recursive: true, force: true });
          out.ok(`removed ${r.id}`);
        }
        // The sets are gone by now: a metrics file that cannot be written is worth a warning, not a failed run.
        if (textfileDir) await writeRotateMetrics(textfileDir, { ok: true, endedAt: new Date(), kept: plan.keep.length, removed: plan.remove.length }).catch((e: Error) => out.warn(`could not write metrics: ${e.message}`));
      }
      out.info(`${ctx.dryRun ? 'would keep' : 'kept'} ${plan.keep.length}, ${ctx.dryRun ? 'would remove' : 'removed'} ${plan.remove.length}`);
      out.result({ ok: true, dryRun: ctx.dryRun, timeZone, keep: plan.keep.map((k) => ({ id: k.id, reasons: k.reasons })), remove: plan.remove.map((r) => r.id) });
      return EXIT.ok;
    } catch (err) {
      if (!ctx.dryRun && textfileDir && !(err instanceof LockedError)) await writeRotateMetrics(textfileDir, { ok: false, endedAt: new Date() }).catch(() => {});
      throw err;
    } finally {
      lock?.release();
    }
  });
}

startIfEntry(import.meta.url, main);
