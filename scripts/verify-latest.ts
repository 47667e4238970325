// verify-latest: checks the newest complete backup set: quick (default), --checksums, --deep (restore drill).
// Example: npx tsx scripts/verify-latest.ts --checksums
import { randomBytes } from 'node:crypto';
import { runScript, startIfEntry, type CommandSpec } from '../lib/cli.ts';
import { backupRoot, setUp } from '../lib/ops.ts';
import { configuredSources } from '../lib/sources/index.ts';
import { diffCounts, type RestorePlan, type Source } from '../lib/sources/types.ts';
import { parseDuration } from '../lib/duration.ts';
import { checkChecksums, checkPresence, describeProblem, incompleteSets, pickSet, type Problem } from '../lib/verify.ts';
import { listCompleteSets, type CompleteSet } from '../lib/backup-set.ts';
import { writeVerifyMetrics } from '../lib/metrics.ts';
import { failedIfAny, formatBytes, formatDuration } from '../lib/output.ts';
import { EXIT, VerifyError } from '../lib/errors.ts';
import type { ScriptContext } from '../lib/cli.ts';
import type { Ops } from '../lib/ops.ts';

export const spec: CommandSpec = {
  name: 'verify-latest',
  summary: 'check the newest complete backup set: quick (default), --checksums, or --deep (a restore drill)',
  examples: ['npx tsx scripts/verify-latest.ts', 'npx tsx scripts/verify-latest.ts --checksums', 'npx tsx scripts/verify-latest.ts --deep --json'],
  mutating: false,
  flags: {
    checksums: { type: 'boolean', description: "also check every artifact's sha256 and read every dump in full" },
    deep: { type: 'boolean', description: 'also restore into scratch targets and compare counts with the manifest (never touches live data)' },
    from: { type: 'string', value: 'ID', description: 'verify this set instead of the newest' },
  },
  notes: [
    'Exit 4 when the set fails a check (named in the output), is older than backup.maxAge (default 26h), or is dated in the future.',
    'Metrics (monitoring.textfileDir) are written for the newest set only, never for a set named with --from.',
  ],
};

const FUTURE_TOLERANCE_MS = 5 * 60_000;

const totalBytes = (s: CompleteSet) => s.manifest.artifacts.reduce((a, b) => a + b.size, 0);

/** The --checksums level's reads of each source's artifacts (a full read of every dump): what they found wrong. */
async function readArtifacts(ops: Ops, set: CompleteSet, sources: Source[]): Promise<Problem[]> {
  const problems: Problem[] = [];
  for (const source of sources) {
    try {
      await source.verifyArtifacts(ops.sourceContext, set.dir, set.manifest);
    } catch (err) {
      if (!(err instanceof VerifyError)) throw err;
      problems.push({ message: err.message });
    }
  }
  return problems;
}

/** Restore drill: scratch targets named for this run, counts compared, scratch removed whatever happens. */
async function deepDrill(ops: Ops, ctx: ScriptContext, set: CompleteSet, sources: Source[], warnings: string[]): Promise<Problem[]> {
  const problems: Problem[] = [];
  const tag = `${set.id.toLowerCase()}_${randomBytes(3).toString('hex')}`;
  for (const source of sources) {
    if (source.noDrill) {
      const warning = `${source.name}: ${source.noDrill}`;
      ctx.out.warn(warning);
      warnings.push(warning);
      problems.push(...(await readArtifacts(ops, set, [source])));
      continue;
    }
    let plan: RestorePlan | undefined;
    try {
      await source.verifyArtifacts(ops.sourceContext, set.dir, set.manifest, { forRestore: true });
      plan = await source.planRestore(ops.sourceContext, set.dir, set.manifest, { force: false, scratch: tag });
      await source.restore(ops.sourceContext, set.dir, set.manifest, plan, { force: false, scratch: tag });
      const diff = diffCounts(set.manifest.sources[source.name]!.counts, await source.countRestored(ops.sourceContext, plan), source.countGroups?.());
      for (const d of diff) problems.push({ message: `${source.name}: restore drill: ${d}` });
      if (!diff.length) ctx.out.ok(`${source.name}: restore drill counts match the manifest`);
    } catch (err) {
      // Interrupted (Ctrl-C, SIGTERM) is not a verification result: the run fails (exit 1) without a verdict. Nor is
      // a drill that could not begin (the server unreachable, a wrong password: planning is where it connects).
      if (ctx.signal.aborted || (plan === undefined && !(err instanceof VerifyError))) throw err;
      problems.push({ message: `${source.name}: restore drill failed: ${(err as Error).message}` });
    } finally {
      if (plan) await ctx.out.step(`${source.name}: remove scratch targets`, () => source.cleanup(ops.sourceContext, plan!));
      await source.dispose?.();
    }
  }
  return problems;
}

export function main(argv: string[]): Promise<number> {
  return runScript(spec, argv, async (ctx) => {
    const ops = setUp(ctx);
    const { loaded, sourceContext } = ops;
    const out = ctx.out;
    const root = backupRoot(loaded);
    const sources = await configuredSources(loaded);
    const level = ctx.values.deep ? 'deep' : ctx.values.checksums ? 'checksums' : 'quick';
    const textfileDir = loaded.config.monitoring?.textfileDir;
    let newestSet: Date | undefined;
    // Metrics describe the newest set, for alerts: a check of an older set (--from) must not clear or raise them.
    const report = async (ok: boolean) => {
      if (textfileDir && ctx.values.from === undefined) await writeVerifyMetrics(textfileDir, { level, ok, endedAt: new Date(), newestSet }).catch((e: Error) => out.warn(`could not write metrics: ${e.message}`));
    };
    try {
      for (const s of await incompleteSets(root)) out.warn(`ignored incomplete set ${s.id}: ${s.problems.join('; ')}`);
      const complete = await listCompleteSets(root);
      const set = await pickSet(root, { sets: complete, id: ctx.values.from as string | undefined, needs: sources.map((s) => s.name), remedy: (newest) => `check it with --from ${newest.id}` });
      newestSet = new Date(set.manifest.startedAt);
      const problems: Problem[] = [];
      const warnings: string[] = [];
      const ageMs = Date.now() - newestSet.getTime();
      const maxAge = loaded.config.backup?.maxAge ?? '26h';
      const bytes = totalBytes(set);
      out.info(`set ${set.id}: ${set.manifest.artifacts.length} artifacts, ${formatBytes(bytes)}, ${ageMs >= 0 ? `${formatDuration(ageMs)} old` : `dated ${formatDuration(-ageMs)} in the future`}`);
      if (ageMs > parseDuration(maxAge)) problems.push({ message: `${ctx.values.from === undefined ? 'newest set' : 'set'} ${set.id} is ${formatDuration(ageMs)} old, more than backup.maxAge ${maxAge}` });
      // A set from the future would pass the age check for ever (and hold the newest-set metric there): a clock
      // wrong now or when the set was taken. Five minutes of skew are tolerated.
      if (ageMs < -FUTURE_TOLERANCE_MS) problems.push({ message: `set ${set.id} is dated ${formatDuration(-ageMs)} in the future (startedAt ${set.manifest.startedAt}): check this host's clock and the clock of the host that took it` });
      // A set much smaller than the one before is worth a look (a bucket emptied, a table truncated), not a failure.
      const previous = complete.filter((s) => s.id < set.id && sources.every((src) => s.manifest.sources[src.name])).at(-1);
      const dropWarn = loaded.config.backup?.sizeDropWarn ?? 0.5;
      if (previous && totalBytes(previous) > 0 && bytes < totalBytes(previous) * (1 - dropWarn)) {
        warnings.push(`set ${set.id} is ${formatBytes(bytes)}, ${Math.round((1 - bytes / totalBytes(previous)) * 100)}% smaller than ${previous.id} (${formatBytes(totalBytes(previous))})`);
      }
      for (const w of warnings) out.warn(w);
      problems.push(...(await out.step('artifacts present with recorded sizes', () => checkPresence(set), failedIfAny('missing or of another size'))));
      for (const source of sources.filter((s) => set.manifest.sources[s.name] && s.checkPresence)) {
        const found = await out.step(
          `${source.name}: what the artifacts list is present with recorded sizes`,
          () => source.checkPresence!(set.dir, set.manifest),
          failedIfAny('missing or of another size'),
        );
        problems.push(...found.slice(0, 20).map((message) => ({ message })));
        if (found.length > 20) problems.push({ message: `${source.name}: ... and ${found.length - 20} more` });
      }
      if (level !== 'quick' && problems.length === 0) {
        problems.push(...(await out.step('sha256 of every artifact', () => checkChecksums(set), (p) => ({ bytes, ...failedIfAny('mismatched')(p) }))));
      }
      const present = sources.filter((s) => set.manifest.sources[s.name]);
      if (level === 'checksums' && problems.length === 0) problems.push(...(await readArtifacts(ops, set, present)));
      if (level === 'deep' && problems.length === 0) problems.push(...(await deepDrill(ops, ctx, set, present, warnings)));
      const ok = problems.length === 0;
      await report(ok);
      out.result({ ok, level, set: set.id, startedAt: set.manifest.startedAt, ageSeconds: Math.round(ageMs / 1000), bytes, warnings, problems: problems.map(describeProblem) });
      if (!ok) throw new VerifyError(`set ${set.id} failed verification (${level})`, problems.map(describeProblem));
      out.ok(`set ${set.id} verified (${level})`);
      return EXIT.ok;
    } catch (err) {
      // Failures other than a verdict raise the alert too (a broken config in cron), but an interrupted run says nothing.
      if (!(err instanceof VerifyError && /failed verification/.test(err.message)) && !ctx.signal.aborted) await report(false);
      throw err;
    }
  });
}

startIfEntry(import.meta.url, main);
