// Neo4j 5 under Compose. Community: the DBMS is stopped, each database dumped by a one-off container
// (`neo4j-admin database dump`), and neo4j started again in a `finally`, so a failed dump never leaves the graph
// down (DESIGN.md §6). Enterprise: online `neo4j-admin database backup` from a one-off container. Counts and the
// version come from the HTTP API before the stop.
import { chmod, chown, copyFile, mkdir, mkdtemp, readdir, rename, rm, stat } from 'node:fs/promises';
import { constants as fsConstants } from 'node:fs';
import { dirname, join } from 'node:path';
import { userInfo } from 'node:os';
import type { Config } from '../config.ts';
import { artifactPath, describeArtifact, type Artifact } from '../backup-set.ts';
import { RefusedError, StepError, UsageError, VerifyError } from '../errors.ts';
import { composeArgv, type ComposeSettings, type Runner } from '../run.ts';
import type { Output } from '../output.ts';
import { setEntry, type BackupResult, type Counts, type RestorePlan, type Source, type SourceContext } from './types.ts';

/** `<db>-<timestamp>.dump|.backup`, as Neo4j names dumps and backups with a time in them (2026-11-24T02-30-00...). */
export function isTimestampedDump(file: string, db: string): boolean {
  if (!file.startsWith(`${db}-`)) return false;
  return /^\d{4}-?\d{2}-?\d{2}(?:T[\d:.-]+Z?)?(?:[-_.][A-Za-z0-9]+)*\.(?:dump|backup)$/.test(file.slice(db.length + 1));
}

/** Why --deep cannot drill Neo4j: a scratch database would need a server of its own. */
const NO_DRILL = 'a restore drill needs a second Neo4j server (Community hosts one user database): checked by checksums only';

export type Neo4jConfig = NonNullable<NonNullable<Config['sources']>['neo4j']>;

/** The neo4j image runs neo4j-admin as uid 7474: the mounted /backups must be writable by it. */
const NEO4J_UID = 7474;

export const neo4jFileName = (db: string) => `${encodeURIComponent(db).replace(/\./g, '%2E')}.dump`;

/** Compare "5.26.12" style versions: negative when a < b. */
export function compareVersions(a: string, b: string): number {
  const pa = a.split(/[.-]/).map((x) => Number.parseInt(x, 10) || 0);
  const pb = b.split(/[.-]/).map((x) => Number.parseInt(x, 10) || 0);
  for (let i = 0; i < Math.max(pa.length, pb.length); i++) {
    const d = (pa[i] ?? 0) - (pb[i] ?? 0);
    if (d) return d;
  }
  return 0;
}

/** argv of the one-off container that runs neo4j-admin with `dir` mounted at /backups. */
export function adminArgv(compose: ComposeSettings, service: string, dir: string, admin: string[], image?: string): string[] {
  return composeArgv(compose, [
    'run', '--rm', '--no-deps',
    // Plugins would be downloaded at start by the image's entrypoint: not wanted for a one-off admin command.
    '-e', 'NEO4J_PLUGINS=',
    '-v', `${dir}:/backups`,
    ...(image ? ['--entrypoint', 'neo4j-admin'] : []),
    service,
    ...(image ? admin.slice(1) : admin),
  ]);
}

interface Neo4jDetails {
  version: string;
  edition: string;
  databases: string[];
  dumps: Record<string, string>;
  downtimeMs: number;
}

interface Neo4jRestoreData {
  databases: string[];
  dumps: Record<string, string>;
  scratch: boolean;
}

export function createNeo4jSource(cfg: Neo4jConfig, compose: ComposeSettings | undefined): Source {
  if (!compose) throw new UsageError('invalid config: compose: is required for sources.neo4j (it runs under Compose)');
  const service = cfg.service ?? 'neo4j';
  const databases = [...(cfg.databases ?? ['neo4j', 'system'])];
  const edition = cfg.edition ?? 'community';
  const httpUrl = (cfg.httpUrl ?? 'http://127.0.0.1:7474').replace(/\/+$/, '');
  const auth = cfg.password !== undefined ? `Basic ${Buffer.from(`${cfg.user ?? 'neo4j'}:${cfg.password}`).toString('base64')}` : undefined;
  const compose_ = compose;

  async function http<T>(path: string, init: RequestInit = {}): Promise<T> {
    const res = await fetch(`${httpUrl}${path}`, {
      ...init,
      headers: { accept: 'application/json', 'content-type': 'application/json', ...(auth ? { authorization: auth } : {}) },
      signal: AbortSignal.timeout(30_000),
    });
    if (!res.ok) throw new Error(`${path}: HTTP ${res.status}`);
    return (await res.json()) as T;
  }

  async function version(): Promise<{ version: string; edition: string }> {
    const doc = await http<{ neo4j_version?: string; neo4j_edition?: string }>('/');
    if (!doc.neo4j_version) throw new Error(`${httpUrl}/ did not report neo4j_version`);
    return { version: doc.neo4j_version, edition: doc.neo4j_edition ?? 'unknown' };
  }

  /** Nodes and relationships per user database (the system database has no graph to count). */
  async function counts(dbs: string[]): Promise<Counts> {
    const out: Counts = {};
    for (const db of dbs.filter((d) => d !== 'system')) {
      const r = await http<{ results: { data: { row: number[] }[] }[]; errors: { message: string }[] }>(`/db/${encodeURIComponent(db)}/tx/commit`, {
        method: 'POST',
        body: JSON.stringify({ statements: [{ statement: 'MATCH (n) RETURN count(n)' }, { statement: 'MATCH ()-[r]->() RETURN count(r)' }] }),
      });
      if (r.errors?.length) throw new Error(`count ${db}: ${r.errors.map((e) => e.message).join('; ')}`);
      setEntry(out, db, { nodes: r.results[0]!.data[0]!.row[0]!, relationships: r.results[1]!.data[0]!.row[0]! });
    }
    return out;
  }

  async function waitUntilUp(deadlineMs: number): Promise<void> {
    const end = Date.now() + deadlineMs;
    for (;;) {
      try {
        await version();
        return;
      } catch (err) {
        if (Date.now() > end) throw new Error(`neo4j did not answer on ${httpUrl} within ${Math.round(deadlineMs / 1000)} s: ${(err as Error).message}`);
        await new Promise((r) => setTimeout(r, 1000));
      }
    }
  }

  /** A directory the container's neo4j user can write, inside our (0700) staging area. */
  async function mountableDir(dir: string): Promise<void> {
    await mkdir(dir, { recursive: true, mode: 0o700 });
    if (userInfo().uid === 0) await chown(dir, NEO4J_UID, NEO4J_UID);
    else await chmod(dir, 0o777); // not root: cannot chown; the parent staging dir (0700) still keeps others out
  }

  async function ownFiles(dir: string): Promise<void> {
    const me = userInfo();
    for (const f of await readdir(dir)) {
      if (me.uid === 0) await chown(join(dir, f), me.uid, me.gid);
      await chmod(join(dir, f), 0o600);
    }
    if (me.uid === 0) await chown(dir, me.uid, me.gid);
    await chmod(dir, 0o700);
  }

  const stop = (runner: Runner) => runner.capture({ argv: composeArgv(compose_, ['stop', service]) });
  const start = (runner: Runner) => runner.capture({ argv: composeArgv(compose_, ['start', service]) });

  return {
    name: 'neo4j',
    noDrill: NO_DRILL,
    describe: () => `neo4j (${edition}) via compose service ${service}: ${databases.join(', ')}`,

    async backup(ctx: SourceContext, stageDir: string): Promise<BackupResult> {
      const { runner, out } = ctx;
      const dir = join(stageDir, 'neo4j');
      const v = await version().catch((err: Error) => {
        throw new StepError('neo4j', 'version', err.message, { cause: err });
      });
      const before = await counts(databases).catch((err: Error) => {
        throw new StepError('neo4j', 'counts', err.message, { cause: err });
      });
      if (!runner.dryRun) await mountableDir(dir);
      const dumps: Record<string, string> = {};
      let downtimeMs = 0;
      if (edition === 'enterprise') {
        for (const db of databases) {
          await out.step(`neo4j: online backup ${db}`, () =>
            runner.capture({ argv: adminArgv(compose_, service, dir, ['neo4j-admin', 'database', 'backup', `--from=${service}:6362`, '--to-path=/backups', db], cfg.image) }).catch((err: Error) => {
              throw new StepError('neo4j', `backup ${db}`, err.message, { cause: err });
            }),
          );
        }
      } else {
        const stoppedAt = performance.now();
        try {
          await out.step(`neo4j: stop ${service} (Community dumps need the DBMS stopped)`, () => stop(runner));
          for (const db of databases) {
            await out.step(`neo4j: dump ${db}`, () =>
              runner.capture({ argv: adminArgv(compose_, service, dir, ['neo4j-admin', 'database', 'dump', db, '--to-path=/backups', '--overwrite-destination=true'], cfg.image) }).catch((err: Error) => {
                throw new StepError('neo4j', `dump ${db}`, err.message, { cause: err });
              }),
            );
          }
        } finally {
          // Always, whatever failed above: a failed dump must never leave the graph down.
          await out.step(`neo4j: start ${service}`, () => start(runner.uninterruptible())).catch((err: Error) => out.error(`neo4j: could not start ${service} again: ${err.message}: start it by hand now`));
          downtimeMs = Math.round(performance.now() - stoppedAt);
        }
        if (!runner.dryRun) out.info(`neo4j: ${service} was down for ${(downtimeMs / 1000).toFixed(1)} s`);
      }
      const artifacts: Artifact[] = [];
      if (!runner.dryRun) {
        await ownFiles(dir);
        const files = await readdir(dir);
        for (const db of databases) {
          // The dump's file name differs between versions and editions: <db>.dump, or <db>-<timestamp>.dump/.backup.
          // Only those two forms: "foo-bar.dump" is database foo-bar's dump, not database foo's.
          const candidates = files.includes(`${db}.dump`) ? [`${db}.dump`] : files.filter((f) => isTimestampedDump(f, db));
          if (candidates.length === 0) throw new StepError('neo4j', `dump ${db}`, `neo4j-admin wrote no dump for ${db} in ${dir}`);
          const newest = (await Promise.all(candidates.map(async (f) => ({ f, t: (await stat(join(dir, f))).mtimeMs })))).sort((a, b) => b.t - a.t)[0]!.f;
          const rel = `neo4j/${neo4jFileName(db)}`;
          if (newest !== neo4jFileName(db)) await rename(join(dir, newest), join(stageDir, rel));
          setEntry(dumps, db, rel);
          artifacts.push(await describeArtifact(stageDir, rel, 'neo4j', { kind: `neo4j-${edition === 'enterprise' ? 'backup' : 'dump'}` }));
        }
      }
      const details: Neo4jDetails = { version: v.version, edition: v.edition, databases, dumps, downtimeMs };
      return { record: { serverVersion: v.version, counts: before, details: details as unknown as Record<string, unknown> }, artifacts };
    },

    async verifyArtifacts(_ctx, setDir, manifest) {
      // A dump is opaque to us without a Neo4j; the checksums are the check. Make sure each is there and non-empty.
      for (const a of manifest.artifacts.filter((x) => x.source === 'neo4j')) {
        const st = await stat(artifactPath(setDir, a.path)).catch(() => null);
        if (!st || st.size === 0) throw new VerifyError(`neo4j: ${a.path}: missing or empty`);
      }
    },

    async planRestore(ctx, setDir, manifest, opts): Promise<RestorePlan> {
      const rec = manifest.sources.neo4j;
      if (!rec) throw new UsageError(`set ${manifest.id} has no neo4j backup`);
      const details = rec.details as unknown as Neo4jDetails;
      if (opts.scratch) {
        throw new RefusedError(`neo4j: ${NO_DRILL}`);
      }
      const target = await version().catch((err: Error) => {
        throw new StepError('neo4j', 'version', err.message, { cause: err });
      });
      if (compareVersions(details.version, target.version) > 0) {
        throw new RefusedError(`neo4j: the set was dumped by Neo4j ${details.version}, the target runs ${target.version}: a dump does not load into older binaries`);
      }
      const live = await counts(details.databases);
      const busy = Object.entries(live).filter(([, c]) => (c.nodes ?? 0) > 0);
      if (busy.length && !opts.force) {
        throw new RefusedError('neo4j: refusing to overwrite data', busy.map(([db, c]) => `database ${db} has ${c.nodes} nodes: pass --force to replace it`));
      }
      const steps = [
        `stop ${service}`,
        ...details.databases.map((db) => `neo4j-admin database load ${db} --overwrite-destination=true from ${details.dumps[db]}`),
        `start ${service} (always, also after a failed load), wait until it answers, compare node and relationship counts`,
      ];
      void ctx;
      void setDir;
      return { source: 'neo4j', steps, data: { databases: details.databases, dumps: details.dumps, scratch: false } satisfies Neo4jRestoreData };
    },

    async restore(ctx, setDir, _manifest, plan) {
      const { runner, out } = ctx;
      const data = plan.data as Neo4jRestoreData;
      // neo4j-admin load wants <db>.dump in the mounted directory, readable by the image's neo4j user (the
      // entrypoint runs it as uid 7474): copies (a reflink where the file system has them), never the set's own
      // files, whose owner and mode stay ours. A root holding only copied sets (a fresh host) has no .staging yet.
      const staging = join(dirname(setDir), '.staging');
      const loadDir = runner.dryRun ? join(staging, 'neo4j-load') : await mkdir(staging, { recursive: true, mode: 0o700 }).then(() => mkdtemp(join(staging, 'neo4j-load-')));
      try {
        if (!runner.dryRun) {
          await mountableDir(loadDir);
          await out.step(`neo4j: copy ${data.databases.length === 1 ? 'the dump' : `${data.databases.length} dumps`} for neo4j-admin (uid ${NEO4J_UID})`, async () => {
            for (const db of data.databases) {
              const copy = join(loadDir, `${db}.dump`);
              await copyFile(artifactPath(setDir, data.dumps[db]!), copy, fsConstants.COPYFILE_FICLONE);
              if (userInfo().uid === 0) {
                await chown(copy, NEO4J_UID, NEO4J_UID);
                await chmod(copy, 0o400);
              } else {
                await chmod(copy, 0o444); // cannot chown: readable by all, inside the 0700 staging directory
              }
            }
          });
        }
        try {
          await out.step(`neo4j: stop ${service}`, () => stop(runner));
          for (const db of data.databases) {
            await out.step(`neo4j: load ${db}`, () =>
              runner.capture({ argv: adminArgv(compose_, service, loadDir, ['neo4j-admin', 'database', 'load', db, '--from-path=/backups', '--overwrite-destination=true'], cfg.image) }).catch((err: Error) => {
                throw new StepError('neo4j', `load ${db}`, err.message, { cause: err });
              }),
            );
          }
        } finally {
          await out.step(`neo4j: start ${service}`, () => start(runner.uninterruptible())).catch((err: Error) => out.error(`neo4j: could not start ${service} again: ${err.message}: start it by hand now`));
        }
        if (!runner.dryRun) await out.step('neo4j: wait until it answers', () => waitUntilUp(180_000));
      } finally {
        if (!runner.dryRun) await rm(loadDir, { recursive: true, force: true });
      }
    },

    async countRestored(_ctx, plan) {
      return counts((plan.data as Neo4jRestoreData).databases);
    },

    async cleanup() {
      // No scratch targets: planRestore refuses a drill.
    },
  };
}
