// verify-latest: checks the newest complete backup set: quick (default), --checksums, --deep (restore drill).
// Example: npx tsx scripts/verify-latest.ts --checksums
import { runScript, startIfEntry, type CommandSpec } from '../lib/cli.ts';
import { backupRoot, setUp } from '../lib/ops.ts';
import { configuredSources } from '../lib/sources/index.ts';
import { parseDuration } from '../lib/duration.ts';
import { checkChecksums, checkPresence, describeProblem, incompleteSets, pickSet, type Problem } from '../lib/verify.ts';
import { formatBytes, formatDuration } from '../lib/output.ts';
import { EXIT, VerifyError } from '../lib/errors.ts';

export const spec: CommandSpec = {
  name: 'verify-latest',
  summary: 'check the newest complete backup set (manifest, artifacts, age; optionally checksums and a full read)',
  examples: ['npx tsx scripts/verify-latest.ts', 'npx tsx scripts/verify-latest.ts --checksums', 'npx tsx scripts/verify-latest.ts --checksums --json'],
  mutating: false,
  flags: {
    checksums: { type: 'boolean', description: "also check every artifact's sha256 and read every dump in full" },
    from: { type: 'string', value: 'ID', description: 'verify this set instead of the newest' },
  },
  notes: ['Exit 4 when the set fails a check (named in the output), or is older than backup.maxAge (default 26h).'],
};

export function main(argv: string[]): Promise<number> {
  return runScript(spec, argv, async (ctx) => {
    const ops = setUp(ctx);
    const { loaded, sourceContext } = ops;
    const out = ctx.out;
    const root = backupRoot(loaded);
    const sources = configuredSources(loaded);
    const level = ctx.values.checksums ? 'checksums' : 'quick';
    for (const s of await incompleteSets(root)) out.warn(`ignored incomplete set ${s.id}: ${s.problems.join('; ')}`);
    const set = await pickSet(root, { id: ctx.values.from as string | undefined, needs: sources.map((s) => s.name) });
    const problems: Problem[] = [];
    const started = Date.parse(set.manifest.startedAt);
    const ageMs = Date.now() - started;
    const maxAgeMs = parseDuration(loaded.config.backup?.maxAge ?? '26h');
    const bytes = set.manifest.artifacts.reduce((a, b) => a + b.size, 0);
    out.info(`set ${set.id}: ${set.manifest.artifacts.length} artifacts, ${formatBytes(bytes)}, ${formatDuration(ageMs)} old`);
    if (ageMs > maxAgeMs) problems.push({ message: `newest set ${set.id} is ${formatDuration(ageMs)} old, more than backup.maxAge ${loaded.config.backup?.maxAge ?? '26h'}` });
    problems.push(...(await out.step('artifacts present with recorded sizes', () => checkPresence(set))));
    if (level === 'checksums') {
      problems.push(...(await out.step('sha256 of every artifact', () => checkChecksums(set), (p) => ({ bytes, note: p.length ? `${p.length} mismatched` : undefined }))));
      if (problems.length === 0) {
        for (const source of sources.filter((s) => set.manifest.sources[s.name])) {
          try {
            await source.verifyArtifacts(sourceContext, set.dir, set.manifest);
          } catch (err) {
            if (!(err instanceof VerifyError)) throw err;
            problems.push({ message: err.message });
          }
        }
      }
    }
    ctx.out.result({ ok: problems.length === 0, level, set: set.id, startedAt: set.manifest.startedAt, ageSeconds: Math.round(ageMs / 1000), bytes, problems: problems.map(describeProblem) });
    if (problems.length) throw new VerifyError(`set ${set.id} failed verification (${level})`, problems.map(describeProblem));
    out.ok(`set ${set.id} verified (${level})`);
    return EXIT.ok;
  });
}

startIfEntry(import.meta.url, main);
