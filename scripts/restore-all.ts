// restore-all: restores a backup set (default: the newest complete one holding every source asked for) into the
// targets the config names, after checking every artifact; refuses non-empty targets without --force; compares
// counts afterwards.
// Example: npx tsx scripts/restore-all.ts --from 20261124T023000Z --dry-run
import { runScript, startIfEntry, type CommandSpec } from '../lib/cli.ts';
import { backupRoot, setUp } from '../lib/ops.ts';
import { acquireLock } from '../lib/lock.ts';
import { listCompleteSets, type CompleteSet } from '../lib/backup-set.ts';
import { configuredSources, parseOnly } from '../lib/sources/index.ts';
import { checkChecksums, checkPresence, pickSet, throwIfProblems } from '../lib/verify.ts';
import { failedIfAny } from '../lib/output.ts';
import { confirm } from '../lib/confirm.ts';
import { diffCounts, type RestorePlan } from '../lib/sources/types.ts';
import { EXIT, UsageError, VerifyError } from '../lib/errors.ts';

export const spec: CommandSpec = {
  name: 'restore-all',
  summary: 'restore a backup set into the configured targets, with checks before and after',
  examples: [
    'npx tsx scripts/restore-all.ts --dry-run',
    'npx tsx scripts/restore-all.ts --from 20261124T023000Z --only postgres --yes',
    'npx tsx scripts/restore-all.ts --force --yes',
  ],
  mutating: true,
  flags: {
    from: { type: 'string', value: 'ID', description: 'restore this set (default: the newest complete set holding every configured source, or every --only source)' },
    only: { type: 'string', multiple: true, value: 'SOURCES', description: 'restore only these sources (comma-separated)' },
    force: { type: 'boolean', description: 'replace targets that already hold data (the old data is dropped only after the restored copy checks out)' },
  },
  notes: ['Order: postgres, neo4j, qdrant, s3. Exit 5 when a target is not empty (without --force), the set comes from a newer server, or confirmation is missing.'],
};

export function main(argv: string[]): Promise<number> {
  return runScript(spec, argv, async (ctx) => {
    const ops = setUp(ctx);
    const { loaded, sourceContext } = ops;
    const out = ctx.out;
    const root = backupRoot(loaded);
    const only = parseOnly(ctx.values.only as string[] | undefined);
    const sources = await configuredSources(loaded, only);
    // The newest set holding every source asked for (as verify-latest picks it): a newer set of fewer sources (a
    // pre-migration set holds PostgreSQL only) is not the whole stack, and is named for --from.
    const wanted = sources.map((s) => s.name);
    const held = (x: CompleteSet) => wanted.filter((n) => x.manifest.sources[n]);
    const complete = await listCompleteSets(root);
    const set = await pickSet(root, {
      sets: complete,
      id: ctx.values.from as string | undefined,
      needs: wanted,
      remedy: (newest) => `restore what it holds with --from ${newest.id}${held(newest).length ? ` --only ${held(newest).join(',')}` : ''}`,
    });
    if (ctx.values.from === undefined) {
      // Newer sets with part of what was asked for (a pre-migration set: PostgreSQL only), each with its command.
      for (const newer of complete.filter((x) => x.id > set.id && held(x).length > 0)) {
        out.info(`newer set ${newer.id} holds only ${held(newer).join(', ')} of ${wanted.join(', ')}: not chosen (restore it with --from ${newer.id} --only ${held(newer).join(',')})`);
      }
    }
    const chosen = sources.filter((s) => set.manifest.sources[s.name]);
    const absent = sources.filter((s) => !set.manifest.sources[s.name]).map((s) => s.name);
    if (only && absent.length) throw new UsageError(`set ${set.id} holds no backup of ${absent.join(', ')}`);
    for (const name of absent) out.warn(`set ${set.id} holds no backup of ${name}: not restored`);
    if (chosen.length === 0) throw new UsageError(`set ${set.id} holds none of the configured sources`);
    const names = new Set<string>(chosen.map((s) => s.name));
    const lock = ctx.dryRun ? undefined : acquireLock(root, `restore-all ${argv.join(' ')}`.trim(), (m) => out.warn(m));
    try {
      out.info(`restoring set ${set.id} (${set.manifest.startedAt}): ${chosen.map((s) => s.name).join(', ')}`);
      // Every check that reads only the set comes before anything touches a target.
      throwIfProblems(`set ${set.id}`, await out.step('artifacts present with recorded sizes', () => checkPresence(set, (s) => names.has(s)), failedIfAny('missing or of another size')));
      // Checksums and the sources' full reads stream the same files: side by side, both before any target is
      // touched. Planning only asks the targets questions (versions, emptiness), so it runs alongside.
      const force = Boolean(ctx.values.force);
      const planning = Promise.allSettled(chosen.map((s) => s.planRestore(sourceContext, set.dir, set.manifest, { force })));
      const [sums, ...reads] = await Promise.allSettled([
        out.step('sha256 of every artifact', () => checkChecksums(set, (s) => names.has(s)), failedIfAny('mismatched')),
        ...chosen.map((s) => s.verifyArtifacts(sourceContext, set.dir, set.manifest, { forRestore: true })),
      ]);
      const planned = await planning;
      // A checksum mismatch is the clearer report; then the first failed full read; then what planning refused.
      if (sums.status === 'rejected') throw sums.reason;
      throwIfProblems(`set ${set.id}`, sums.value);
      for (const r of reads) if (r.status === 'rejected') throw r.reason;
      const plans: RestorePlan[] = [];
      for (const p of planned) {
        if (p.status === 'rejected') throw p.reason;
        plans.push(p.value);
      }
      for (const p of plans) for (const step of p.steps) out.plan(`${p.source}: ${step}`);
      if (ctx.dryRun) {
        out.ok('dry run: nothing was changed');
        out.result({ ok: true, dryRun: true, set: set.id, plan: plans.map((p) => ({ source: p.source, steps: p.steps })) });
        return EXIT.ok;
      }
      await confirm({ yes: ctx.yes, expect: set.id, question: `restore set ${set.id} into ${chosen.map((s) => s.describe()).join('; ')}` });
      const results: Record<string, string[]> = {};
      for (const [i, s] of chosen.entries()) {
        const plan = plans[i]!;
        await s.restore(sourceContext, set.dir, set.manifest, plan, { force });
        const diff = diffCounts(set.manifest.sources[s.name]!.counts, await s.countRestored(sourceContext, plan), s.countGroups?.());
        results[s.name] = diff;
        if (diff.length) throw new VerifyError(`${s.name}: restored counts differ from the manifest`, diff);
        out.ok(`${s.name}: counts match the manifest`);
      }
      out.result({ ok: true, set: set.id, restored: chosen.map((s) => s.name) });
      out.ok(`restored set ${set.id}`);
      return EXIT.ok;
    } finally {
      for (const s of chosen) await s.dispose?.();
      lock?.release();
    }
  });
}

startIfEntry(import.meta.url, main);
