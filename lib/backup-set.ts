// Backup sets on disk (DESIGN.md §5): staging, manifest written last, atomic publish, listing complete sets.
import { mkdir, readdir, readFile, rename, rm, stat, writeFile, chmod } from 'node:fs/promises';
import { existsSync, readFileSync } from 'node:fs';
import { join, resolve, sep } from 'node:path';
import { hostname } from 'node:os';
import type { ValidateFunction } from 'ajv';
import { validate as manifestValidator } from '../schemas/manifest.validate.ts';
import type { FromSchema } from 'json-schema-to-ts';
import type { manifestSchema } from '../schemas/manifest.schema.ts';
import { formatAjvErrors } from './config.ts';
import { ensureDirSync, fsyncPath, sha256File } from './fs-util.ts';
import { forEachBounded } from './pool.ts';
import { processStartTime } from './lock.ts';

export type Manifest = FromSchema<typeof manifestSchema>;
export type Artifact = Manifest['artifacts'][number];
export type SourceRecord = Manifest['sources'][string];

export const SET_ID = /^[0-9]{8}T[0-9]{6}Z$/;
export const STAGING = '.staging';

/** Compiled ahead of time by `npm run schemas` (ajv standalone). */
const validateManifest = manifestValidator as ValidateFunction;

export function toolVersion(): string {
  const pkg = JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8')) as { version: string };
  return pkg.version;
}

/** 2026-11-24T02:30:00.123Z -> 20261124T023000Z: sorts by time, safe as a directory name. */
export function setIdFor(date: Date): string {
  return date.toISOString().replace(/\.\d{3}Z$/, 'Z').replace(/[-:]/g, '');
}

export function setIdToDate(id: string): Date {
  const m = /^(\d{4})(\d{2})(\d{2})T(\d{2})(\d{2})(\d{2})Z$/.exec(id);
  if (!m) throw new Error(`not a set id: ${id}`);
  return new Date(Date.UTC(+m[1]!, +m[2]! - 1, +m[3]!, +m[4]!, +m[5]!, +m[6]!));
}

export function checkManifest(data: unknown): string[] {
  return validateManifest(data) ? [] : formatAjvErrors(validateManifest.errors ?? []);
}

/** Join a manifest path under a set directory, refusing anything that would leave it. */
export function artifactPath(setDir: string, rel: string): string {
  const full = resolve(setDir, rel);
  if (!full.startsWith(resolve(setDir) + sep)) throw new Error(`artifact path leaves the set: ${rel}`);
  return full;
}

export async function describeArtifact(setDir: string, rel: string, source: string, extra: Partial<Artifact> = {}): Promise<Artifact> {
  const full = artifactPath(setDir, rel);
  const [st, sha256] = await Promise.all([stat(full), sha256File(full)]);
  return { path: rel, size: st.size, sha256, source, ...extra };
}

export interface Staging {
  id: string;
  dir: string;
  startedAt: Date;
}

/** A new staging directory whose id is not taken yet (two runs in one second wait for the next). */
export async function createStaging(root: string, now: () => Date = () => new Date()): Promise<Staging> {
  ensureDirSync(join(root, STAGING));
  await chmod(root, 0o700);
  for (;;) {
    const startedAt = now();
    const id = setIdFor(startedAt);
    const dir = join(root, STAGING, id);
    if (!existsSync(join(root, id)) && !existsSync(dir)) {
      await mkdir(dir, { mode: 0o700 });
      return { id, dir, startedAt };
    }
    await new Promise((r) => setTimeout(r, 1000 - (startedAt.getTime() % 1000) + 5));
  }
}

/**
 * The prefix of a restore's scratch directory under <root>/.staging (pg_restore -L lists): it names the process,
 * so that a backup-all or rotate running meanwhile (a restore drill takes no lock) leaves it alone while that
 * process lives, and anyone may remove it once it is gone.
 */
export function restoreScratchPrefix(pid = process.pid): string {
  return `restore-${pid}.${processStartTime(pid) ?? 0}-`;
}

/** A restore scratch directory whose process still runs (on this host: .staging is local to it). */
function restoreScratchLive(name: string): boolean {
  const m = /^restore-(\d+)\.(\d+)-/.exec(name);
  return m !== null && processStartTime(Number(m[1])) === m[2];
}

/** Remove the restore scratch directories under <root>/.staging whose process is gone; returns their names. */
export async function cleanDeadRestoreScratch(root: string): Promise<string[]> {
  const names = (await readdir(join(root, STAGING)).catch(() => [] as string[])).filter((n) => n.startsWith('restore-') && !restoreScratchLive(n));
  for (const name of names) await rm(join(root, STAGING, name), { recursive: true, force: true });
  return names;
}

/** Names under <root>/.staging at least `olderThanMs` old (all of them with 0), but a live restore's: what cleanStaging removes. */
export async function staleStaging(root: string, olderThanMs = 0, now = Date.now()): Promise<string[]> {
  const dir = join(root, STAGING);
  let entries: string[];
  try {
    entries = await readdir(dir);
  } catch {
    return [];
  }
  const stale: string[] = [];
  for (const name of entries) {
    if (restoreScratchLive(name)) continue;
    const st = await stat(join(dir, name)).catch(() => null);
    if (!st) continue;
    if (olderThanMs > 0 && now - st.mtimeMs < olderThanMs) continue;
    stale.push(name);
  }
  return stale;
}

/** Remove staging directories (all, or those older than `olderThanMs`); returns the ids removed. */
export async function cleanStaging(root: string, olderThanMs = 0, now = Date.now()): Promise<string[]> {
  const removed = await staleStaging(root, olderThanMs, now);
  for (const name of removed) await rm(join(root, STAGING, name), { recursive: true, force: true });
  return removed;
}

/** Write the manifest last, make everything durable, then rename the staging directory into place. */
export async function publish(root: string, staging: Staging, manifest: Manifest): Promise<string> {
  const errors = checkManifest(manifest);
  if (errors.length) throw new Error(`internal: manifest invalid: ${errors.join('; ')}`);
  const path = join(staging.dir, 'manifest.json');
  await writeFile(path, `${JSON.stringify(manifest, null, 2)}\n`, { mode: 0o600 });
  for (const a of manifest.artifacts) await fsyncPath(artifactPath(staging.dir, a.path));
  await fsyncPath(path);
  await fsyncSubdirs(staging.dir);
  const final = join(root, staging.id);
  await rename(staging.dir, final);
  await fsyncPath(root);
  return final;
}

/**
 * fsync every directory of a tree, deepest level first so each comes after its subdirectories; the directories of a
 * level side by side, a few at a time (a set may hold thousands: one at a time took a tenth of a second for 260).
 */
async function fsyncSubdirs(dir: string): Promise<void> {
  const levels: string[][] = [];
  const walk = async (d: string, depth: number) => {
    (levels[depth] ??= []).push(d);
    for (const e of await readdir(d, { withFileTypes: true })) if (e.isDirectory()) await walk(join(d, e.name), depth + 1);
  };
  await walk(dir, 0);
  for (const level of levels.reverse()) await forEachBounded(level, 16, fsyncPath);
}

export interface ListedSet {
  id: string;
  dir: string;
  manifest: Manifest | null;
  /** Why the set is not complete (no manifest, invalid manifest, id mismatch). */
  problems: string[];
}

function sameSecond(startedAt: string, id: string): boolean {
  const t = Date.parse(startedAt);
  return Number.isFinite(t) && setIdFor(new Date(t)) === id;
}

/** Every set directory under root, complete or not, oldest first. Staging and dot-directories are never listed. */
export async function listSets(root: string): Promise<ListedSet[]> {
  let names: string[];
  try {
    names = await readdir(root);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return [];
    throw err;
  }
  const sets: ListedSet[] = [];
  for (const id of names.filter((n) => SET_ID.test(n.toUpperCase())).sort()) {
    const dir = join(root, id);
    const problems: string[] = [];
    if (!SET_ID.test(id)) {
      // Renamed by hand or by a tool that lower-cases: not a set as written, but worth saying rather than ignoring.
      sets.push({ id, dir, manifest: null, problems: [`not a set id as written (sets are named like ${id.toUpperCase()})`] });
      continue;
    }
    let manifest: Manifest | null = null;
    try {
      const data = JSON.parse(await readFile(join(dir, 'manifest.json'), 'utf8')) as unknown;
      problems.push(...checkManifest(data));
      if (problems.length === 0) {
        manifest = data as Manifest;
        if (manifest.id !== id) problems.push(`manifest id ${manifest.id} does not match directory ${id}`);
        // The id is the start time to the second: a time that does not parse (a leap second passes the schema's
        // date-time format), or another time, would sort and age the set wrongly (rotate, verify-latest).
        else if (!sameSecond(manifest.startedAt, id)) problems.push(`manifest startedAt ${manifest.startedAt} does not match directory ${id}`);
      }
    } catch (err) {
      problems.push((err as NodeJS.ErrnoException).code === 'ENOENT' ? 'no manifest.json' : `manifest.json unreadable: ${(err as Error).message}`);
    }
    sets.push({ id, dir, manifest: problems.length ? null : manifest, problems });
  }
  return sets;
}

export type CompleteSet = ListedSet & { manifest: Manifest };

/** Only sets with a valid manifest count, ordered by the manifest's start time (never mtimes). */
export async function listCompleteSets(root: string): Promise<CompleteSet[]> {
  return (await listSets(root))
    .filter((s): s is CompleteSet => s.manifest !== null)
    .sort((a, b) => Date.parse(a.manifest.startedAt) - Date.parse(b.manifest.startedAt));
}

export function baseManifest(staging: Staging, tags: string[]): Manifest {
  return {
    formatVersion: 1,
    id: staging.id,
    startedAt: staging.startedAt.toISOString(),
    finishedAt: staging.startedAt.toISOString(),
    host: hostname(),
    toolVersion: toolVersion(),
    tags,
    sources: {},
    artifacts: [],
  };
}
