// The interface every source module implements (DESIGN.md §2): scripts loop over sources, never switch on kind.
import type { Config } from '../config.ts';
import type { Artifact, Manifest, SourceRecord } from '../backup-set.ts';
import type { Output } from '../output.ts';
import type { ComposeSettings, Runner } from '../run.ts';

export type SourceName = 'postgres' | 'neo4j' | 'qdrant' | 's3';
/** Restore order of DESIGN.md / issue 3: relational first, object store last. */
export const SOURCE_ORDER: SourceName[] = ['postgres', 'neo4j', 'qdrant', 's3'];

/** scope (database, collection, bucket) -> item (table, "points", "objects") -> count */
export type Counts = Record<string, Record<string, number>>;

/**
 * obj[key] = value as an own property whatever the key: a collection or database named "__proto__" (valid in Qdrant
 * and PostgreSQL) would otherwise set the object's prototype and vanish from the manifest.
 */
export function setEntry<T>(obj: Record<string, T>, key: string, value: NoInfer<T>): void {
  Object.defineProperty(obj, key, { value, enumerable: true, writable: true, configurable: true });
}

/** obj[key] if it is the object's own entry: "__proto__" or "constructor" would read Object.prototype's instead. */
export function ownEntry<T>(obj: Record<string, T>, key: string): T | undefined {
  return Object.hasOwn(obj, key) ? obj[key] : undefined;
}

export interface SourceContext {
  runner: Runner;
  out: Output;
  config: Config;
  compose?: ComposeSettings;
  signal: AbortSignal;
  /** The previous complete set, for sources that reuse unchanged data (S3 hard links). */
  previousSetDir?: string;
  previousManifest?: Manifest;
}

export interface BackupResult {
  record: Omit<SourceRecord, 'durationMs'>;
  artifacts: Artifact[];
}

export interface RestoreOptions {
  force: boolean;
  /**
   * Restore into throwaway targets named with this tag (verify-latest --deep): never the live data, and
   * `cleanup` removes them afterwards.
   */
  scratch?: string;
}

export interface RestorePlan {
  source: SourceName;
  /** Human lines, printed by --dry-run and before a real restore. */
  steps: string[];
  /** Source-specific data the restore needs (targets, versions). */
  data: unknown;
}

export interface Source {
  readonly name: SourceName;
  /** One line for plans and logs, e.g. "postgres via compose service postgres: llc". */
  describe(): string;
  backup(ctx: SourceContext, stageDir: string): Promise<BackupResult>;
  /**
   * A read of this source's artifacts deeper than checksums (e.g. a full pg_restore read). Throws VerifyError.
   * `forRestore`: a restore follows, so the source may keep what it unpacked for it (released by `dispose`).
   */
  verifyArtifacts(ctx: SourceContext, setDir: string, manifest: Manifest, opts?: { forRestore?: boolean }): Promise<void>;
  /**
   * The quick level's presence check of what the manifest's artifacts refer to (the object files an S3 index
   * lists): problems found, each naming the file. Sources whose artifacts are all in the manifest have none.
   */
  checkPresence?(setDir: string, manifest: Manifest): Promise<string[]>;
  /** Safety checks (versions, non-empty targets) and the plan. Throws RefusedError when unsafe. */
  planRestore(ctx: SourceContext, setDir: string, manifest: Manifest, opts: RestoreOptions): Promise<RestorePlan>;
  restore(ctx: SourceContext, setDir: string, manifest: Manifest, plan: RestorePlan, opts: RestoreOptions): Promise<void>;
  /** Counts in the restore targets, keyed like the manifest's counts for this source. */
  countRestored(ctx: SourceContext, plan: RestorePlan): Promise<Counts>;
  /** Items of the counts last taken (countRestored) to compare as sums (diffCounts' groups); none when absent. */
  countGroups?(): CountGroups;
  /**
   * Why a --deep drill cannot restore this source beside the live one (Neo4j Community hosts one user database):
   * the drill says so as a warning and reads its artifacts as --checksums does, instead of failing every week.
   */
  readonly noDrill?: string;
  /** Remove scratch targets of a --deep drill. */
  cleanup(ctx: SourceContext, plan: RestorePlan): Promise<void>;
  /** Release temporary files kept between verifyArtifacts and restore. */
  dispose?(): Promise<void>;
}

/**
 * scope -> item -> group: items whose counts are compared as one sum rather than each on its own. PostgreSQL's
 * partitions of a hash-partitioned table: a restore may route a row into another partition than the one it was
 * dumped from (hash partitioning on an enum hashes the enum's OIDs, which a restore renumbers), so only the rows
 * of the whole table must match.
 */
export type CountGroups = Record<string, Record<string, string>>;

/** Lines naming every difference between expected and actual counts; empty when they agree. */
export function diffCounts(expected: Counts, actual: Counts, groups: CountGroups = {}): string[] {
  const lines: string[] = [];
  for (const scope of new Set([...Object.keys(expected), ...Object.keys(actual)])) {
    const e = ownEntry(expected, scope);
    const a = ownEntry(actual, scope);
    if (!e) {
      lines.push(`${scope}: not in the backup`);
      continue;
    }
    if (!a) {
      lines.push(`${scope}: missing after restore`);
      continue;
    }
    const groupOf = ownEntry(groups, scope) ?? {};
    const sums = new Map<string, { expected: number; found: number; items: number }>();
    for (const item of new Set([...Object.keys(e), ...Object.keys(a)])) {
      const want = ownEntry(e, item);
      const got = ownEntry(a, item);
      const group = ownEntry(groupOf, item);
      // An item on one side only is named on its own: a table missing after the restore is not a moved row.
      if (group !== undefined && want !== undefined && got !== undefined) {
        const sum = sums.get(group) ?? { expected: 0, found: 0, items: 0 };
        sums.set(group, { expected: sum.expected + want, found: sum.found + got, items: sum.items + 1 });
        continue;
      }
      if (want !== got) lines.push(`${scope} ${item}: expected ${want ?? 'absent'}, found ${got ?? 'absent'}`);
    }
    for (const [group, sum] of sums) {
      if (sum.expected !== sum.found) lines.push(`${scope} ${group} (its ${sum.items} partitions together): expected ${sum.expected}, found ${sum.found}`);
    }
  }
  return lines;
}
