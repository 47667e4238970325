// Checks of a backup set (DESIGN.md §8): quick (manifest, artifacts present with their sizes, age) and checksums.
// Each check returns problems naming the artifact; callers turn problems into exit 4.
import { stat } from 'node:fs/promises';
import { artifactPath, listCompleteSets, listSets, SET_ID, type CompleteSet } from './backup-set.ts';
import { sha256File } from './fs-util.ts';
import { UsageError, VerifyError } from './errors.ts';
import type { SourceName } from './sources/types.ts';

export interface Problem {
  artifact?: string;
  message: string;
}

export const describeProblem = (p: Problem): string => (p.artifact ? `${p.artifact}: ${p.message}` : p.message);

/** Every artifact exists and has the recorded size. */
export async function checkPresence(set: CompleteSet, filter?: (source: string) => boolean): Promise<Problem[]> {
  const problems: Problem[] = [];
  for (const a of set.manifest.artifacts.filter((x) => !filter || filter(x.source))) {
    try {
      const st = await stat(artifactPath(set.dir, a.path));
      if (st.size !== a.size) problems.push({ artifact: a.path, message: `size ${st.size} bytes, manifest says ${a.size}` });
    } catch (err) {
      problems.push({ artifact: a.path, message: (err as NodeJS.ErrnoException).code === 'ENOENT' ? 'missing' : (err as Error).message });
    }
  }
  return problems;
}

/** Every artifact's sha256 matches the manifest (after presence; a missing file is reported once). */
export async function checkChecksums(set: CompleteSet, filter?: (source: string) => boolean, onEach?: (path: string) => void): Promise<Problem[]> {
  const problems: Problem[] = [];
  for (const a of set.manifest.artifacts.filter((x) => !filter || filter(x.source))) {
    onEach?.(a.path);
    try {
      const sum = await sha256File(artifactPath(set.dir, a.path));
      if (sum !== a.sha256) problems.push({ artifact: a.path, message: `sha256 ${sum} does not match the manifest's ${a.sha256}` });
    } catch (err) {
      problems.push({ artifact: a.path, message: (err as NodeJS.ErrnoException).code === 'ENOENT' ? 'missing' : (err as Error).message });
    }
  }
  return problems;
}

export function throwIfProblems(what: string, problems: Problem[]): void {
  if (problems.length) throw new VerifyError(`${what}: ${problems.length} problem${problems.length > 1 ? 's' : ''}`, problems.map(describeProblem));
}

/** Sets under root that are not complete (no or invalid manifest): never counted, but worth a warning. */
export async function incompleteSets(root: string): Promise<{ id: string; problems: string[] }[]> {
  return (await listSets(root)).filter((s) => s.manifest === null).map((s) => ({ id: s.id, problems: s.problems }));
}

/**
 * The set to verify or restore: `id` if given (must be complete), else the newest complete set holding every
 * source in `needs` (a pre-migration set of PostgreSQL alone is not "the latest backup" of a four-store config).
 * `sets`: the complete sets under `root` when the caller has listed them for its own use (each manifest is read
 * and validated once per run, not once per question).
 */
export async function pickSet(root: string, opts: { id?: string; needs: SourceName[]; remedy?: (newest: CompleteSet) => string; sets?: CompleteSet[] }): Promise<CompleteSet> {
  if (opts.id !== undefined && !SET_ID.test(opts.id)) throw new UsageError(`--from: ${JSON.stringify(opts.id)} is not a set id (like 20261124T023000Z)`);
  const sets = opts.sets ?? (await listCompleteSets(root));
  if (opts.id) {
    const found = sets.find((s) => s.id === opts.id);
    if (found) return found;
    const any = (await listSets(root)).find((s) => s.id === opts.id);
    if (any) throw new VerifyError(`set ${opts.id} is not complete`, any.problems);
    throw new VerifyError(`no set ${opts.id} under ${root}`);
  }
  const candidates = sets.filter((s) => opts.needs.every((n) => s.manifest.sources[n] !== undefined));
  const newest = candidates.at(-1);
  if (!newest) {
    const last = sets.at(-1);
    throw new VerifyError(
      last
        ? `no complete set under ${root} holds all of ${opts.needs.join(', ')} (the newest, ${last.id}, holds ${Object.keys(last.manifest.sources).join(', ')}${opts.remedy ? `: ${opts.remedy(last)}` : ''})`
        : `no complete backup set under ${root}`,
    );
  }
  return newest;
}
