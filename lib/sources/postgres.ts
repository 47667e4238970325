// PostgreSQL: pg_dump custom format per database + pg_dumpall --globals-only, row counts taken in the dump's
// own snapshot, a full read before publishing, and restore with safety checks. via: compose runs the tools inside
// the server container so their major version matches (DESIGN.md §6); via: local runs the host's binaries.
import { dirname, join } from 'node:path';
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { availableParallelism } from 'node:os';
import type { ChildProcess } from 'node:child_process';
import { PassThrough, type Readable } from 'node:stream';
import { pipeline as streamPipeline } from 'node:stream/promises';
import type { PostgresConfig } from '../config.ts';
import { describeArtifact, artifactPath, cleanDeadRestoreScratch, restoreScratchPrefix, type Artifact, type Manifest } from '../backup-set.ts';
import { RefusedError, StepError, UsageError, VerifyError } from '../errors.ts';
import { CommandError, composeExec, type Command, type ComposeSettings, type PipelineSink, type Runner } from '../run.ts';
import { CopyStreamError, loadCopyStream, rowsCopied, type CopyStats } from '../pg-copy.ts';
import { pgProgram } from '../tools.ts';
import { diffCounts, ownEntry, setEntry, type BackupResult, type CountGroups, type Counts, type RestoreOptions, type RestorePlan, type Source, type SourceContext } from './types.ts';

export const quoteIdent = (name: string): string => `"${name.replace(/"/g, '""')}"`;
export const quoteLiteral = (text: string): string => `'${text.replace(/'/g, "''")}'`;
/** A libpq conninfo naming one database: safe for any name (a bare name with "=" would be parsed as conninfo). */
export const conninfoDb = (db: string): string => `dbname='${db.replace(/\\/g, '\\\\').replace(/'/g, "\\'")}'`;

/** File name for a database's dump: readable, but never a path (names may hold "/" or ".."). */
export function dumpFileName(db: string, compression: 'zstd-external' | 'native'): string {
  const safe = encodeURIComponent(db).replace(/\./g, '%2E');
  return compression === 'zstd-external' ? `${safe}.dump.zst` : `${safe}.dump`;
}

/** How to reach the server: wraps a tool invocation for compose or the host, with credentials only in env. */
export interface PgEndpoint {
  via: 'compose' | 'local';
  /** `bare`: no connection flags (for --version). */
  tool(argv: string[], opts?: { input?: string; bare?: boolean }): Command;
  /** Display name: "compose service postgres" or "127.0.0.1:5432". */
  where: string;
}

export function pgEndpoint(cfg: PostgresConfig, compose: ComposeSettings | undefined): PgEndpoint {
  if (cfg.via === 'compose') {
    if (!compose) throw new UsageError('invalid config: compose: is required when sources.postgres.via is compose');
    const service = cfg.service ?? 'postgres';
    const user = cfg.user ?? 'postgres';
    const env: Record<string, string> = cfg.password ? { PGPASSWORD: cfg.password } : {};
    return {
      via: 'compose',
      where: `compose service ${service}`,
      // Inside the official image local socket connections are trust: -U is enough (DESIGN.md §6).
      tool: (argv, opts = {}) =>
        composeExec(compose, service, { argv: opts.bare ? argv : [argv[0]!, '-U', user, ...argv.slice(1)], env, input: opts.input }),
    };
  }
  const env = libpqEnv(cfg.url!);
  // A password in the URL wins over the config's `password`; either way it only ever travels in the env.
  if (!env.PGPASSWORD && cfg.password) env.PGPASSWORD = cfg.password;
  return {
    via: 'local',
    where: `${env.PGHOST ?? 'localhost'}:${env.PGPORT ?? '5432'}`,
    tool: (argv, opts = {}) => ({ argv: [pgProgram(argv[0]!, env), ...argv.slice(1)], env, input: opts.input }),
  };
}

const URL_PARAMS: Record<string, string> = {
  host: 'PGHOST', hostaddr: 'PGHOSTADDR', port: 'PGPORT', user: 'PGUSER', password: 'PGPASSWORD', sslmode: 'PGSSLMODE',
  sslrootcert: 'PGSSLROOTCERT', sslcert: 'PGSSLCERT', sslkey: 'PGSSLKEY', application_name: 'PGAPPNAME',
  connect_timeout: 'PGCONNECT_TIMEOUT', passfile: 'PGPASSFILE', target_session_attrs: 'PGTARGETSESSIONATTRS',
};

/**
 * A libpq URI (postgresql://user:pw@host:port,host2:port2/db?param=v) as libpq environment variables, so nothing
 * of it needs to be in argv. Handles what WHATWG URL cannot: empty host (socket), several hosts. The database
 * part is ignored: each command names its database.
 */
export function libpqEnv(uri: string): Record<string, string> {
  const m = /^postgres(?:ql)?:\/\/(?:([^@/?#]*)@)?([^/?#]*)(?:\/([^?#]*))?(?:\?([^#]*))?$/.exec(uri);
  if (!m) throw new UsageError('invalid config: sources.postgres.url: not a postgresql:// URI');
  const dec = (s: string) => {
    try {
      return decodeURIComponent(s);
    } catch {
      // Not the text itself: it may be the password.
      throw new UsageError('invalid config: sources.postgres.url: a malformed %-escape (write a literal % as %25)');
    }
  };
  const env: Record<string, string> = {};
  if (m[1]) {
    const i = m[1].indexOf(':');
    env.PGUSER = dec(i < 0 ? m[1] : m[1].slice(0, i));
    if (i >= 0) env.PGPASSWORD = dec(m[1].slice(i + 1));
    if (!env.PGUSER) delete env.PGUSER;
  }
  if (m[2]) {
    const hosts: string[] = [];
    const ports: string[] = [];
    for (const spec of m[2].split(',')) {
      const hp = /^(\[[^\]]*\]|[^:]*)(?::(\d*))?$/.exec(spec);
      if (!hp) throw new UsageError(`invalid config: sources.postgres.url: bad host "${spec}"`);
      hosts.push(dec(hp[1]!.replace(/^\[|\]$/g, '')));
      ports.push(hp[2] ?? '');
    }
    if (hosts.some(Boolean)) env.PGHOST = hosts.join(',');
    if (ports.some(Boolean)) env.PGPORT = ports.join(',');
  }
  for (const pair of (m[4] ?? '').split('&').filter(Boolean)) {
    const [k, v = ''] = pair.split('=').map((x) => dec(x.replace(/\+/g, ' ')));
    const name = URL_PARAMS[k!];
    if (!name) throw new UsageError(`invalid config: sources.postgres.url: unsupported parameter "${k}"`);
    env[name] = v;
  }
  return env;
}

/** Sessions loading table data side by side: the server does the work, one per core keeps it busy. */
const JOBS = Math.max(2, Math.min(4, availableParallelism()));

const PSQL = ['psql', '-X', '-q', '-A', '-t', '-v', 'ON_ERROR_STOP=1'];

async function query(runner: Runner, ep: PgEndpoint, db: string, sql: string): Promise<string> {
  const r = await runner.capture(ep.tool([...PSQL, '-d', conninfoDb(db)], { input: sql }), { readOnly: true });
  return r.stdout.trim();
}

/** Ordinary tables (leaf partitions included), not catalog or extension-owned ones: what pg_dump dumps data of. */
const TABLES_SQL = `
  FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
  WHERE c.relkind = 'r'
    AND n.nspname NOT IN ('pg_catalog', 'information_schema') AND n.nspname !~ '^pg_(toast|temp)'
    AND NOT EXISTS (SELECT 1 FROM pg_depend d WHERE d.classid = 'pg_class'::regclass AND d.objid = c.oid AND d.deptype = 'e')`;

/**
 * Ends the sessions in a database of ours before it is renamed or dropped, waiting up to 5 s for each: after a load
 * that is an autovacuum worker analysing the new tables, and RENAME would otherwise signal it and poll every 100 ms.
 * A role that may not signal it (not superuser) or a server before 14 (no timeout argument) leaves it to RENAME.
 */
function endSessionsIn(db: string): string {
  if (db.includes('$')) throw new Error(`endSessionsIn: ${db} is not a name of ours`);
  return `DO $$BEGIN PERFORM pg_terminate_backend(pid, 5000) FROM pg_stat_activity WHERE datname = ${quoteLiteral(db)} AND pid <> pg_backend_pid();
EXCEPTION WHEN insufficient_privilege OR undefined_function THEN NULL; END$$;`;
}

/** One query whose \gexec result is a JSON object {"schema.table": rows}. */
const COUNTS_SQL = `SELECT 'SELECT coalesce(json_object_agg(t, n), ''{}'') FROM (' ||
  coalesce(string_agg(format('SELECT %L AS t, count(*) AS n FROM ONLY %I.%I', n.nspname || '.' || c.relname, n.nspname, c.relname), ' UNION ALL '),
           'SELECT NULL::text AS t, 0::bigint AS n WHERE false') || ') s' ${TABLES_SQL} \\gexec\n`;

const RELATIONS_SQL = `SELECT count(*) FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
  WHERE c.relkind IN ('r', 'p', 'v', 'm', 'S', 'f') AND n.nspname NOT IN ('pg_catalog', 'information_schema') AND n.nspname !~ '^pg_(toast|temp)';`;

export async function countRows(runner: Runner, ep: PgEndpoint, db: string): Promise<Record<string, number>> {
  return JSON.parse((await query(runner, ep, db, COUNTS_SQL)) || '{}') as Record<string, number>;
}

/**
 * {"schema.partition": "schema.table"} for every partition (a table COUNTS_SQL counts) of a partitioned table with
 * hash partitioning at any level, to its top table: the rows diffCounts compares as one sum (CountGroups). Catalogs
 * of PostgreSQL 10 and later (no pg_partition_root, which came in 12).
 */
const HASH_PARTITIONS_SQL = `WITH RECURSIVE tree(root, relid) AS (
  SELECT p.partrelid, p.partrelid FROM pg_partitioned_table p JOIN pg_class c ON c.oid = p.partrelid WHERE NOT c.relispartition
  UNION ALL
  SELECT t.root, i.inhrelid FROM tree t JOIN pg_inherits i ON i.inhparent = t.relid
)
SELECT coalesce(json_object_agg(n.nspname || '.' || c.relname, rn.nspname || '.' || r.relname), '{}')
  FROM tree t JOIN pg_class c ON c.oid = t.relid AND c.relkind = 'r' JOIN pg_namespace n ON n.oid = c.relnamespace
  JOIN pg_class r ON r.oid = t.root JOIN pg_namespace rn ON rn.oid = r.relnamespace
  WHERE EXISTS (SELECT 1 FROM tree h JOIN pg_partitioned_table hp ON hp.partrelid = h.relid WHERE h.root = t.root AND hp.partstrat = 'h');
`;

/** Rows of every table of a restored database, and its hash partitions' groups (one session). */
export async function countRestoredRows(runner: Runner, ep: PgEndpoint, db: string): Promise<{ counts: Record<string, number>; hashPartitions: Record<string, string> }> {
  const lines = (await query(runner, ep, db, `${COUNTS_SQL}${HASH_PARTITIONS_SQL}`)).split('\n');
  if (lines.length !== 2) throw new Error(`unexpected answer to the row counts of ${db}: ${lines.length} lines`);
  return { counts: JSON.parse(lines[0] || '{}') as Record<string, number>, hashPartitions: JSON.parse(lines[1] || '{}') as Record<string, string> };
}

const VERSION_SQL = "SELECT current_setting('server_version_num') || '|' || current_setting('server_version');";

/** The answer to VERSION_SQL: "150020|15.20 (Debian ...)". */
function parseVersion(line: string): { text: string; num: number } {
  const [num, text] = line.split('|');
  if (!num || !/^\d+$/.test(num)) throw new Error(`unexpected server version answer: ${line}`);
  return { num: Number(num), text: text ?? num };
}

export async function serverVersion(runner: Runner, ep: PgEndpoint): Promise<{ text: string; num: number }> {
  return parseVersion(await query(runner, ep, 'postgres', VERSION_SQL));
}

/** Major version of the pg_dump that will run (inside the container under compose). */
async function pgDumpMajor(runner: Runner, ep: PgEndpoint): Promise<number> {
  const r = await runner.capture(ep.tool(['pg_dump', '--version'], { bare: true }), { readOnly: true });
  const m = /(\d+)(?:\.\d+)?/.exec(r.stdout.replace(/^[^0-9]*/, ''));
  if (!m) throw new Error(`cannot read pg_dump version from "${r.stdout.trim()}"`);
  return Number(m[1]);
}

/**
 * A psql session holding REPEATABLE READ transaction whose exported snapshot pg_dump imports (--snapshot), so
 * the row counts taken here describe exactly the data in the dump, even while the app writes.
 */
class SnapshotHolder {
  private buffer = '';
  private waiting: ((line: string) => void) | null = null;
  private lines: string[] = [];
  private exited: Promise<number | null>;
  private constructor(
    private readonly child: ChildProcess,
    private readonly stderr: { text: string },
  ) {
    child.stdout!.setEncoding('utf8');
    child.stdout!.on('data', (chunk: string) => {
      this.buffer += chunk;
      let i: number;
      while ((i = this.buffer.indexOf('\n')) >= 0) {
        const line = this.buffer.slice(0, i);
        this.buffer = this.buffer.slice(i + 1);
        if (this.waiting) {
          const w = this.waiting;
          this.waiting = null;
          w(line);
        } else this.lines.push(line);
      }
    });
    this.exited = new Promise((resolve) => child.once('exit', (code) => resolve(code)));
  }

  static open(runner: Runner, ep: PgEndpoint, db: string): SnapshotHolder {
    const { child, stderr } = runner.interactive(ep.tool([...PSQL, '-d', conninfoDb(db)]));
    return new SnapshotHolder(child, stderr);
  }

  private nextLine(): Promise<string> {
    const queued = this.lines.shift();
    if (queued !== undefined) return Promise.resolve(queued);
    return new Promise((resolve, reject) => {
      this.waiting = resolve;
      void this.exited.then((code) => {
        if (this.waiting === resolve) {
          this.waiting = null;
          reject(new Error(`psql exited ${code}: ${this.stderr.text.trim()}`));
        }
      });
    });
  }

  /** Send SQL, return its output lines up to a marker we echo after it. */
  async ask(sql: string): Promise<string[]> {
    const marker = `__llc_ops_${Math.random().toString(36).slice(2)}__`;
    this.child.stdin!.write(`${sql}\n\\echo ${marker}\n`);
    const out: string[] = [];
    for (;;) {
      const line = await this.nextLine();
      if (line === marker) return out;
      out.push(line);
    }
  }

  async close(): Promise<void> {
    this.child.stdin!.end('COMMIT;\n\\q\n');
    const timer = setTimeout(() => this.child.kill('SIGTERM'), 10_000);
    await this.exited;
    clearTimeout(timer);
  }
}

export interface CompressionPlan {
  pgDumpFlags: string[];
  /** Compress on the host with zstd (pg_dump older than 16 has no zstd of its own). */
  external: boolean;
  kind: string;
  compression: 'zstd' | 'gzip' | 'none';
}

/**
 * PG16+ pg_dump compresses with zstd itself. Older pg_dump writes an uncompressed archive and zstd on the host
 * compresses it: measured 4-5x faster than -Fc's default gzip for a smaller file (docs/performance.md).
 */
export function compressionPlan(wanted: 'auto' | 'zstd' | 'gzip' | 'none', pgDumpMajor: number): CompressionPlan {
  if (wanted === 'none') return { pgDumpFlags: ['-Z', '0'], external: false, kind: 'pg_dump', compression: 'none' };
  if (wanted === 'gzip') return { pgDumpFlags: [], external: false, kind: 'pg_dump', compression: 'gzip' };
  if (pgDumpMajor >= 16) return { pgDumpFlags: ['--compress=zstd:3'], external: false, kind: 'pg_dump', compression: 'zstd' };
  return { pgDumpFlags: ['-Z', '0'], external: true, kind: 'pg_dump+zstd', compression: 'zstd' };
}

/**
 * pg_dumpall's roles, minus the statements about the role we connect as: replaying its CREATE/ALTER would
 * set the target superuser's password to the old server's and lock the operator out.
 */
export function filterGlobals(sql: string, connectedAs: string): string {
  const names = [connectedAs, quoteIdent(connectedAs)].map((n) => n.replace(/[.*+?^${}()|[\]\\]/g, '\\$&'));
  const re = new RegExp(`^(CREATE|ALTER) ROLE (${names.join('|')})( |;)`);
  return sql
    .split('\n')
    .filter((line) => !re.test(line))
    .join('\n');
}

interface PgDumpDetails {
  serverVersionNum: number;
  databases: string[];
  /** Artifact path per database. */
  dumps: Record<string, string>;
  globals: string | null;
  compression: 'zstd-external' | 'native';
}

interface PgRestoreData {
  /**
   * staged: the database the archive is loaded into first. `replace` swaps it in for a target that holds data
   * (--force); `rename` gives it the name of a target that did not exist. null: loaded into the target itself.
   */
  targets: { db: string; target: string; exists: boolean; staged: string | null; swap?: 'replace' | 'rename'; dump: string; /** The replaced database's name until it is dropped (swap: replace). */ old?: string }[];
  globals: string | null;
  scratch: boolean;
}

function isZstdExternal(a: Artifact | undefined): boolean {
  return a?.compression === 'zstd' && a.kind === 'pg_dump+zstd';
}

/** A psql session loading table data failed (the server said no): exit 1, not a damaged archive. */
class SessionError extends Error {}

export function createPostgresSource(cfg: PostgresConfig, compose?: ComposeSettings): Source {
  const ep = pgEndpoint(cfg, compose);
  const dbs = [...cfg.databases];

  /** A reader pipeline for a dump: decompress on the host when we compressed it there. */
  const readerFor = (artifact: Artifact, file: string, argv: string[]): { cmds: Command[]; stdin?: string } => {
    const tool = ep.tool(argv);
    if (isZstdExternal(artifact)) return { cmds: [{ argv: ['zstd', '-d', '-c', '-q', file] }, tool] };
    return { cmds: [tool], stdin: file };
  };

  const fullRead = async (runner: Runner, setDir: string, artifact: Artifact, unpacked?: string) => {
    const file = artifactPath(setDir, artifact.path);
    const { cmds, stdin } = unpacked ? { cmds: [ep.tool(['pg_restore', '-f', '/dev/null', unpacked])], stdin: undefined } : readerFor(artifact, file, ['pg_restore', '-f', '/dev/null']);
    try {
      await runner.pipeline(cmds, { stdin }, { readOnly: true });
    } catch (err) {
      throw new VerifyError(`postgres: ${artifact.path}: full read failed (damaged or truncated dump): ${(err as Error).message}`);
    }
  };

  /**
   * Archives a local restore reads, by artifact path (via: local). They are streamed from the set, never unpacked:
   * loaded into a database of our own first, the load itself is the full read (and a failed one is dropped).
   */
  const restoreFiles = new Map<string, string>();
  /** Row counts of restored databases by target name, taken once their table data was loaded (and before a swap). */
  const countedAfterLoad = new Map<string, Record<string, number>>();
  /** Partitions of hash-partitioned tables in the databases counted with count(*), by manifest database: countGroups. */
  const hashPartitions: CountGroups = {};
  /** count(*) of every table of a restored database (`scope`: its name in the manifest), its hash partitions noted. */
  const countRestoredDb = async (ctx: SourceContext, db: string, scope: string): Promise<Record<string, number>> => {
    const r = await countRestoredRows(ctx.runner, ep, db);
    setEntry(hashPartitions, scope, r.hashPartitions);
    const tables = [...new Set(Object.values(r.hashPartitions))];
    if (tables.length) ctx.out.detail(`postgres: ${db}: the partitions of hash-partitioned ${tables.join(', ')} are compared together: a restore may route a row into another partition (as hashing an enum does)`);
    return r.counts;
  };
  /** Table-of-contents lists for pg_restore -L, under <root>/.staging (removed by dispose, or by the next run if we die). */
  let listDir: string | undefined;
  let loads = 0;

  /** An archive problem (exit 4) rather than a server-side one: what a damaged or truncated dump looks like. */
  const DAMAGED = /could not read (?:from )?input file|unexpected end of file|did not find magic string|could not uncompress|corrupt|truncated|not a valid archive|unsupported version|could not find block ID|invalid (?:compression|block)/i;
  const damaged = (err: unknown): boolean =>
    err instanceof CopyStreamError || (err instanceof CommandError && (/^zstd /.test(err.command) || DAMAGED.test(err.stderrTail))) || (err instanceof Error && DAMAGED.test(err.message));

  /**
   * psql sessions fed COPY data by loadCopyStream; a session's own failure is reported rather than the stream's.
   * The sessions connect as soon as `db` exists (`opened`) and the rows flow once its tables do (`ready`), so
   * neither their start nor pg_restore's waits for the schema pass to end. Each session reports the server's
   * "COPY n" for every COPY it ran: `copied` sums them per table (null when they cannot be matched to the COPYs sent).
   */
  const copyInto = async (runner: Runner, db: string, stdout: Readable, opened: Promise<unknown>, ready: Promise<unknown>): Promise<CopyStats & { copied: Record<string, number> | null }> => {
    const sessions: (ReturnType<Runner['feed']> & { headers: string[]; onCopy: (header: string) => void })[] = [];
    const start = () => {
      // Not quiet: psql prints each command's tag, "COPY n" the rows the server stored.
      const feed = runner.feed(ep.tool(['psql', '-X', '-v', 'ON_ERROR_STOP=1', '-d', conninfoDb(db)]), { output: true });
      // One transaction per session: psql ends a COPY at the end of its input, so a session whose feeder dies
      // (our process killed) would otherwise commit the rows it had; without the COMMIT they are rolled back.
      feed.stdin.write('BEGIN;\n');
      const headers: string[] = [];
      const s = { ...feed, headers, onCopy: (header: string) => void headers.push(header) };
      sessions.push(s);
      return s;
    };
    const idle: ReturnType<typeof start>[] = [];
    // Read from now on: a child's stdout nobody reads when it exits is drained by Node (a small data pass can end
    // before the schema pass does). The PassThrough holds what it reads and pushes back on pg_restore past that.
    const rows = new PassThrough();
    streamPipeline(stdout, rows).catch(() => {}); // an error reaches the reader through `rows`
    try {
      await opened;
      for (let i = 0; i < JOBS; i++) idle.push(start());
      await ready;
      const stats = await loadCopyStream(rows, { parallel: JOBS, start: () => idle.shift() ?? start(), epilogue: 'COMMIT;\n' });
      // Sessions no block needed (fewer tables with rows than sessions) end with nothing to do.
      for (const s of idle.splice(0)) s.stdin.end('COMMIT;\n');
      await Promise.all(sessions.map((s) => s.exited));
      return { ...stats, copied: rowsCopied(stats.headers, sessions) };
    } catch (err) {
      for (const s of sessions) s.kill();
      const ends = await Promise.allSettled(sessions.map((s) => s.exited));
      const own = ends.find((e): e is PromiseRejectedResult => e.status === 'rejected' && !/killed by SIGTERM/.test(String((e.reason as Error).message)));
      if (own && !(err instanceof CopyStreamError && /truncated/.test(err.message))) throw new SessionError((own.reason as Error).message);
      throw err;
    }
  };

  /**
   * Restore one archive into `db`, reading it as a stream (never unpacked): the schema (pg_restore --section=
   * pre-data), then the table data through several psql sessions at once (big tables split between them), then
   * everything else (sequence values, large objects, indexes, constraints). Each pass of pg_restore reads the
   * archive only as far as it needs; the data pass reads every byte of the table data. `copied` is what the
   * server reported storing, per table (rowsCopied); countsAfterLoad decides whether that suffices.
   */
  const loadArchive = async (ctx: SourceContext, artifact: Artifact, file: string, db: string, setDir: string, create: () => Promise<unknown>): Promise<CopyStats & { copied: Record<string, number> | null }> => {
    const { runner } = ctx;
    if (!listDir) {
      // A root holding only copied set directories (a fresh host) has no .staging yet.
      const root = dirname(setDir);
      await mkdir(join(root, '.staging'), { recursive: true, mode: 0o700 });
      for (const name of await cleanDeadRestoreScratch(root)) ctx.out.warn(`postgres: removed .staging/${name}, left by a restore that was killed`);
      listDir = await mkdtemp(join(root, '.staging', restoreScratchPrefix()));
    }
    const base = join(listDir, String(loads++));
    const pass = (argv: string[], stdout?: PipelineSink) => {
      const { cmds, stdin } = readerFor(artifact, file, argv);
      return runner.pipeline(cmds, { stdin, stdout }, { readerMayStopEarly: true });
    };
    const conn = conninfoDb(db);
    // The table of contents is read while the database is created; the data pass starts once it is known and
    // waits for the schema pass (copyInto) only before its first rows.
    const created = create();
    const schema = created.then(() => pass(['pg_restore', '--exit-on-error', '--section=pre-data', '-d', conn]));
    const settle = (...ps: Promise<unknown>[]) => Promise.allSettled(ps).then((rs) => rs.find((r): r is PromiseRejectedResult => r.status === 'rejected'));
    const tocRead = await settle(pass(['pg_restore', '-l'], `${base}.toc`));
    if (tocRead) {
      await settle(schema);
      throw tocRead.reason;
    }
    const entries = (await readFile(`${base}.toc`, 'utf8')).split('\n').filter((l) => l.trim() && !l.startsWith(';'));
    // "<dump id>; 0 <oid> TABLE DATA ...": table data has no catalog table (0), unlike a TABLE in a schema named DATA.
    const isData = (l: string) => /^\d+; 0 \d+ TABLE DATA /.test(l);
    const data = entries.filter(isData);
    const rest = entries.filter((l) => !isData(l));
    let stats: CopyStats & { copied: Record<string, number> | null } = { blocks: 0, headers: [], loaded: 0, bytes: 0, workers: 0, copied: {} };
    const loading = (async () => {
      if (!data.length) return;
      await writeFile(`${base}.data`, `${data.join('\n')}\n`, { mode: 0o600 });
      await pass(['pg_restore', '-L', `${base}.data`, '-f', '-'], async (out) => (stats = await copyInto(runner, db, out, created, schema)));
    })();
    // A failed schema pass is the cause, whatever it did to the data pass.
    const [schemaFailed, loadFailed] = await Promise.all([settle(schema), settle(loading)]);
    if (schemaFailed) throw schemaFailed.reason;
    if (loadFailed) throw loadFailed.reason;
    if (rest.length) {
      await writeFile(`${base}.rest`, `${rest.join('\n')}\n`, { mode: 0o600 });
      await pass(['pg_restore', '--exit-on-error', '--section=data', '--section=post-data', '-L', `${base}.rest`, '-d', conn]);
    }
    return stats;
  };

  /**
   * The row counts of a database just loaded, to compare with the manifest's `expected`: the rows each COPY stored,
   * for every table the archive has data of (and only those), when they match the manifest table for table;
   * otherwise, or when the load could not tell, or the database is not one this run created, a count(*) of every
   * table, so a difference is reported only as the tables hold it. A load and a count agree in a database of our
   * own: nothing else writes to its new tables, and nothing restored after the table data (indexes, constraints,
   * triggers created then) adds or removes rows. An existing database may have other sessions writing.
   */
  const countsAfterLoad = async (ctx: SourceContext, db: string, scope: string, expected: Record<string, number>, copied: Record<string, number> | null, created: boolean): Promise<Record<string, number>> => {
    if (!created) ctx.out.detail(`postgres: ${db}: an existing database (other sessions may write to it): counting every table`);
    else if (!copied) ctx.out.detail(`postgres: ${db}: the load's COPY counts could not be read: counting every table`);
    else {
      const differ = diffCounts({ db: expected }, { db: copied }).length;
      if (!differ) {
        ctx.out.detail(`postgres: ${db}: row counts as the load stored them (psql's COPY n per table)`);
        return copied;
      }
      ctx.out.detail(`postgres: ${db}: the tables and rows the load stored differ from the manifest for ${differ} table(s) (as when a partitioned parent loads its partitions' rows): counting every table`);
    }
    return countRestoredDb(ctx, db, scope);
  };

  return {
    name: 'postgres',
    describe: () => `postgres via ${ep.where}: ${dbs.join(', ')}`,

    async backup(ctx, stageDir): Promise<BackupResult> {
      const { runner, out } = ctx;
      const dir = join(stageDir, 'postgres');
      const version = await serverVersion(runner, ep).catch((err: Error) => {
        throw new StepError('postgres', 'connect', err.message, { cause: err });
      });
      const dumpMajor = await pgDumpMajor(runner, ep);
      if (dumpMajor < Math.floor(version.num / 10000)) {
        throw new StepError('postgres', 'version check', `pg_dump ${dumpMajor} cannot dump server ${version.text}: install the matching client or use via: compose`);
      }
      const plan = compressionPlan(cfg.compression ?? 'auto', dumpMajor);
      const counts: Counts = {};
      const dumps: Record<string, string> = {};
      const artifacts: Artifact[] = [];
      if (!runner.dryRun) await mkdir(dir, { recursive: true, mode: 0o700 });
      for (const db of dbs) {
        const rel = `postgres/${dumpFileName(db, plan.external ? 'zstd-external' : 'native')}`;
        const file = join(stageDir, rel);
        const dumped = await out.step(
          `postgres: dump ${db}`,
          async () => {
            if (runner.dryRun) {
              await runner.pipeline(dumpPipeline(db, 'EXPORTED-SNAPSHOT'), { stdout: file });
              return false;
            }
            const holder = SnapshotHolder.open(runner, ep, db);
            try {
              const [snapshot] = await holder.ask('BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY;\nSELECT pg_export_snapshot();');
              if (!snapshot || !/^[0-9A-F-]+$/i.test(snapshot)) throw new Error(`could not export a snapshot (got "${snapshot ?? ''}")`);
              // Counts run in the holder's transaction while pg_dump reads the same snapshot.
              const [rows] = await Promise.all([holder.ask(COUNTS_SQL), runner.pipeline(dumpPipeline(db, snapshot), { stdout: file })]);
              setEntry(counts, db, JSON.parse(rows.join('') || '{}') as Record<string, number>);
            } catch (err) {
              throw new StepError('postgres', `dump ${db}`, (err as Error).message, { cause: err });
            } finally {
              await holder.close();
            }
            return true;
          },
          () => ({ note: counts[db] ? `${Object.keys(counts[db]).length} tables, ${Object.values(counts[db]).reduce((x, y) => x + y, 0)} rows` : undefined }),
        );
        if (!dumped) continue;
        // The hash and the full read both stream the file: run them side by side.
        const [artifact] = await out.step(
          `postgres: sha256 and full read of ${rel}`,
          () =>
            Promise.all([
              describeArtifact(stageDir, rel, 'postgres', { kind: plan.kind, compression: plan.compression }),
              fullRead(runner, stageDir, { path: rel, kind: plan.kind, compression: plan.compression, size: 0, sha256: '', source: 'postgres' }).catch((err: Error) => {
                throw new StepError('postgres', `verify ${db}`, err.message);
              }),
            ]),
          ([a]) => ({ bytes: a.size }),
        );
        artifacts.push(artifact);
        setEntry(dumps, db, rel);
      }
      let globals: string | null = null;
      if (cfg.globals !== false) {
        globals = 'postgres/globals.sql';
        const file = join(stageDir, globals);
        await out.step('postgres: roles (pg_dumpall --globals-only)', async () => {
          await runner.pipeline([ep.tool(['pg_dumpall', '--globals-only'])], { stdout: file }).catch((err: Error) => {
            throw new StepError('postgres', 'globals', err.message, { cause: err });
          });
          if (runner.dryRun) return 0;
          const a = await describeArtifact(stageDir, globals!, 'postgres', { kind: 'pg_dumpall-globals', compression: 'none' });
          artifacts.push(a);
          return a.size;
        }, (bytes) => ({ bytes }));
      }
      const details: PgDumpDetails = { serverVersionNum: version.num, databases: dbs, dumps, globals, compression: plan.external ? 'zstd-external' : 'native' };
      return { record: { serverVersion: version.text, counts, details: details as unknown as Record<string, unknown> }, artifacts };

      function dumpPipeline(db: string, snapshot: string): Command[] {
        const dump = ep.tool(['pg_dump', '-Fc', ...plan.pgDumpFlags, `--snapshot=${snapshot}`, '-d', conninfoDb(db)]);
        return plan.external ? [dump, { argv: ['zstd', '-3', '-q', '-c'] }] : [dump];
      }
    },

    async verifyArtifacts(ctx, setDir, manifest, opts = {}) {
      for (const a of manifest.artifacts.filter((x) => x.source === 'postgres' && x.kind !== 'pg_dumpall-globals')) {
        if (opts.forRestore && ep.via === 'local' && !ctx.runner.dryRun) {
          // The restore reads the archive whole as it loads it (into a database of its own, or after a full
          // read when it loads into an existing one): no separate read here.
          restoreFiles.set(a.path, artifactPath(setDir, a.path));
          continue;
        }
        await ctx.out.step(`postgres: full read of ${a.path}`, () => fullRead(ctx.runner, setDir, a));
      }
    },

    async dispose() {
      if (listDir) await rm(listDir, { recursive: true, force: true });
      listDir = undefined;
      restoreFiles.clear();
    },

    async planRestore(ctx, setDir, manifest, opts): Promise<RestorePlan> {
      const { runner } = ctx;
      const rec = manifest.sources.postgres;
      if (!rec) throw new UsageError(`set ${manifest.id} has no postgres backup`);
      const details = rec.details as unknown as PgDumpDetails;
      // One round trip: the server's version, then its databases.
      let target: { text: string; num: number };
      let names: string[];
      try {
        const [versionLine = '', ...rest] = (await query(runner, ep, 'postgres', `${VERSION_SQL}\nSELECT datname FROM pg_database;`)).split('\n');
        target = parseVersion(versionLine);
        names = rest;
      } catch (err) {
        throw new StepError('postgres', 'connect', (err as Error).message, { cause: err });
      }
      const dumpMajor = Math.floor(details.serverVersionNum / 10000);
      const targetMajor = Math.floor(target.num / 10000);
      if (dumpMajor > targetMajor) {
        throw new RefusedError(`postgres: the set was dumped from PostgreSQL ${rec.serverVersion}, the target runs ${target.text}: a dump does not restore into an older major version`);
      }
      const existing = new Set(names.filter(Boolean));
      const restoreInto = (cfg.restoreInto ?? {}) as Record<string, string>;
      if (!opts.scratch) {
        // A key that names no database is a typo: ignored, the restore would go into the live database of that name.
        const known = new Set([...dbs, ...details.databases]);
        const unknown = Object.keys(restoreInto).filter((k) => !known.has(k));
        if (unknown.length) {
          throw new UsageError(`invalid config: sources.postgres.restoreInto: ${unknown.map((k) => JSON.stringify(k)).join(', ')} ${unknown.length > 1 ? 'are' : 'is'} not a database of sources.postgres.databases or of set ${manifest.id} (${[...known].map((k) => JSON.stringify(k)).join(', ')})`);
        }
      }
      const targets: PgRestoreData['targets'] = [];
      const steps: string[] = [];
      const refusals: string[] = [];
      details.databases.forEach((db, i) => {
        const name = opts.scratch ? `llc_scratch_${opts.scratch}_${i}` : (ownEntry(restoreInto, db) ?? db);
        targets.push({ db, target: name, exists: existing.has(name), staged: null, dump: details.dumps[db]! });
      });
      // Template databases are the server's own, and llc_* names are the staged, replaced and scratch databases of ours.
      const reserved = opts.scratch ? [] : targets.filter((t) => /^template[01]$|^llc_(?:restore|old|scratch)_/.test(t.target)).map((t) => t.target);
      if (reserved.length) throw new UsageError(`invalid config: sources.postgres.restoreInto: ${reserved.join(', ')} cannot be a restore target (template databases and llc_restore_*, llc_old_*, llc_scratch_* names are reserved)`);
      // PostgreSQL truncates longer names (with a notice): the database created would not be the one named.
      const long = targets.filter((t) => Buffer.byteLength(t.target) > 63).map((t) => t.target);
      if (long.length) throw new UsageError(`invalid config: sources.postgres.restoreInto: ${long.join(', ')}: a database name is at most 63 bytes`);
      const twice = targets.filter((t, i) => targets.findIndex((u) => u.target === t.target) !== i).map((t) => t.target);
      if (twice.length) throw new UsageError(`invalid config: sources.postgres.restoreInto: more than one database would be restored into ${[...new Set(twice)].join(', ')}`);
      const stagedPrefix = `llc_restore_${manifest.id.toLowerCase()}_`;
      const stagedName = (t: PgRestoreData['targets'][number]) => `${stagedPrefix}${targets.indexOf(t)}`;
      for (const t of targets) {
        if (t.exists) {
          const relations = Number(await query(runner, ep, t.target, RELATIONS_SQL));
          if (relations > 0 && !opts.force) refusals.push(`database ${t.target} is not empty (${relations} relations): pass --force to replace it`);
          // The swap renames from the postgres database: it cannot rename the database it runs in.
          if (relations > 0 && opts.force && t.target === 'postgres') refusals.push('database postgres is not empty: it is the maintenance database restores run from and cannot be replaced; restore into another name (sources.postgres.restoreInto)');
          if (relations > 0) {
            t.staged = stagedName(t);
            t.swap = 'replace';
            // The name the replaced database gets until it is dropped: a free one (an earlier run may have left one).
            const base = `llc_old_${manifest.id.toLowerCase()}_${targets.indexOf(t)}`;
            t.old = base;
            for (let n = 2; existing.has(t.old); n++) t.old = `${base}_${n}`;
            steps.push(`restore ${t.dump} into new database ${t.staged}, check its row counts, then swap it in for ${t.target} (the old ${t.target} is dropped only after the counts match)`);
            continue;
          }
          steps.push(ep.via === 'local' ? `read ${t.dump} whole, then restore it into existing empty database ${t.target}` : `restore ${t.dump} into existing empty database ${t.target}`);
        } else if (ep.via === 'local' && !opts.scratch) {
          t.staged = stagedName(t);
          t.swap = 'rename';
          steps.push(`restore ${t.dump} into new database ${t.staged}, check its row counts, then rename it ${t.target} (${t.target} appears only once it is complete)`);
        } else {
          steps.push(`create database ${t.target}, restore ${t.dump} into it`);
        }
      }
      // Before any refusal: what earlier runs left behind is worth knowing whatever this run does.
      for (const name of existing) {
        if (/^llc_old_/.test(name)) ctx.out.warn(`postgres: database ${name} holds what an earlier --force restore replaced: drop it once it is not needed`);
        if (/^llc_scratch_/.test(name)) ctx.out.warn(`postgres: database ${name} is a restore drill's scratch copy (verify-latest --deep) left by a run that was killed: drop it once no drill is running`);
        if (/^llc_restore_/.test(name) && !name.startsWith(stagedPrefix)) ctx.out.warn(`postgres: database ${name} is a half-restored copy left by a restore of another set that was killed: drop it once no restore is running`);
      }
      if (refusals.length) throw new RefusedError('postgres: refusing to overwrite data', refusals);
      for (const t of targets) if (t.staged && existing.has(t.staged)) steps.push(`drop database ${t.staged} first: an interrupted restore of this set left it`);
      const globals = opts.scratch ? null : details.globals;
      if (globals) steps.unshift(`apply roles from ${globals} (existing roles are kept, their attributes updated)`);
      steps.push('compare row counts of every table with the manifest');
      return { source: 'postgres', steps, data: { targets, globals, scratch: Boolean(opts.scratch) } satisfies PgRestoreData };
    },

    async restore(ctx, setDir, manifest, plan) {
      const { runner, out } = ctx;
      const data = plan.data as PgRestoreData;
      const expected = manifest.sources.postgres!.counts;
      if (data.globals) {
        const file = artifactPath(setDir, data.globals);
        await out.step('postgres: apply roles', async () => {
          const me = await query(runner, ep, 'postgres', 'SELECT current_user;');
          const sql = filterGlobals(await readFile(file, 'utf8'), me);
          // A role that exists makes CREATE ROLE fail while the ALTER ROLE after it still applies: run on past
          // errors, then fail on any error that is not "already exists".
          const r = await runner.capture(ep.tool(['psql', '-X', '-q', '-v', 'ON_ERROR_STOP=0', '-d', conninfoDb('postgres')], { input: sql }), { allowFailure: true });
          const errors = r.stderr.split('\n').filter((l) => /ERROR:/.test(l) && !/already exists/.test(l));
          if (r.code !== 0 || errors.length) throw new StepError('postgres', 'apply roles', errors.join('; ') || `psql exited ${r.code}`);
        });
      }
      for (const t of data.targets) {
        const into = t.staged ?? t.target;
        const artifact = manifest.artifacts.find((a) => a.path === t.dump)!;
        const file = restoreFiles.get(t.dump);
        if (file && !t.staged && t.exists) {
          // An existing database is touched by the load itself: read the archive whole before that.
          await out.step(`postgres: full read of ${t.dump}`, () => fullRead(runner, setDir, artifact));
        }
        const loaded = await out.step(
          `postgres: restore ${t.db} into ${into}`,
          async () => {
            // A staged name is this set's and this run's (we hold the lock): one that exists was left by an interrupted restore.
            // From template0, as the pg_restore manual says: whatever was added to template1 on this server (a table,
            // an extension's objects) is not in the dump and must not appear in the restored database.
            const create = `${t.staged ? `DROP DATABASE IF EXISTS ${quoteIdent(into)} WITH (FORCE);\n` : ''}CREATE DATABASE ${quoteIdent(into)} TEMPLATE template0;`;
            const createIt = async () => {
              // Not cut off by Ctrl-C: the server would finish a CREATE DATABASE after psql is gone, after our DROP.
              if (!t.exists || t.staged) await runner.uninterruptible().capture(onServer(create));
            };
            // With a local file, the table of contents is read while the database is created.
            if (!file) await createIt();
            try {
              if (file) {
                const stats = await loadArchive(ctx, artifact, file, into, setDir, createIt);
                // Counted before the step ends: a count that fails drops what was created, like a load that fails.
                return { ...stats, counts: await countsAfterLoad(ctx, into, t.db, ownEntry(expected, t.db) ?? {}, stats.copied, Boolean(t.staged) || !t.exists) };
              }
              // From a pipe (compose: the archive is on the host, pg_restore in the container): one transaction.
              const { cmds, stdin } = readerFor(artifact, artifactPath(setDir, t.dump), ['pg_restore', '--exit-on-error', '--single-transaction', '-d', conninfoDb(into)]);
              await runner.pipeline(cmds, { stdin });
              return undefined;
            } catch (err) {
              // A database we created goes again; an existing empty one may hold part of the restore now.
              if (t.staged || !t.exists) await dropDatabase(runner, into).catch(() => {});
              const note = t.exists && !t.staged && file ? ` (${into} may hold a partial restore: rerun with --force)` : '';
              const untouched = !t.staged ? '' : t.swap === 'rename' ? ` (${t.target} was not created)` : ` (${t.target} left unchanged)`;
              const message = (err as Error).message;
              if (!runner.dryRun && !(err instanceof SessionError) && damaged(err)) {
                throw new VerifyError(`postgres: ${t.dump}: full read failed (damaged or truncated dump): ${message}${untouched}`);
              }
              throw new StepError('postgres', `restore ${t.db}`, `${message}${note}${untouched}`, { cause: err });
            }
          },
          (stats) => ({ note: stats?.loaded ? `${stats.loaded === 1 ? "1 table's" : `${stats.loaded} tables'`} data over ${stats.workers} sessions` : undefined }),
        );
        // Counts taken after the load are the target's (a swap or rename only renames): countRestored need not scan again.
        if (!t.staged && loaded?.counts) countedAfterLoad.set(t.target, loaded.counts);
        if (t.staged && !runner.dryRun) {
          // Counts before the swap: a restore that came out wrong never replaces the live database.
          const counted =
            loaded?.counts ??
            (await countRestoredDb(ctx, into, t.db).catch(async (err: unknown) => {
              await dropDatabase(runner, into).catch(() => {});
              throw err;
            }));
          const diff = diffCounts({ [t.db]: ownEntry(expected, t.db) ?? {} }, { [t.db]: counted }, hashPartitions);
          if (diff.length) {
            await dropDatabase(runner, into);
            throw new VerifyError(`postgres: restored ${t.db} does not match the manifest; ${t.target} left unchanged`, diff);
          }
          countedAfterLoad.set(t.target, counted);
          if (t.swap === 'rename') {
            const rename = `${endSessionsIn(into)}\nALTER DATABASE ${quoteIdent(into)} RENAME TO ${quoteIdent(t.target)};`;
            await out.step(`postgres: counts checked, rename ${into} to ${t.target}`, () => runner.capture(onServer(rename))).catch(async (err: Error) => {
              await dropDatabase(runner, into).catch(() => {});
              throw new StepError('postgres', `rename ${into} to ${t.target}`, err.message, { cause: err });
            });
            continue;
          }
          const old = t.old!; // named by planRestore for every swap: a free llc_old_* name
          await out.step(`postgres: swap ${into} in for ${t.target}`, async () => {
            const swap = [
              `SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = ${quoteLiteral(t.target)} AND pid <> pg_backend_pid();`,
              endSessionsIn(into),
              // Both renames or neither: a run killed here never leaves the target name missing.
              'BEGIN;',
              `ALTER DATABASE ${quoteIdent(t.target)} RENAME TO ${quoteIdent(old)};`,
              `ALTER DATABASE ${quoteIdent(into)} RENAME TO ${quoteIdent(t.target)};`,
              'COMMIT;',
            ];
            await runner.capture(onServer(swap.join('\n'))).catch(async (err: Error) => {
              // Rolled back: the target is as it was; the staged copy goes (a swap that committed left no such name).
              await dropDatabase(runner, into).catch(() => {});
              throw new StepError('postgres', `swap ${into} in for ${t.target}`, `${err.message} (${t.target} left unchanged)`, { cause: err });
            });
            await dropDatabase(runner, old);
          });
        } else if (t.staged) {
          out.plan(t.swap === 'rename' ? `rename ${into} to ${t.target}` : `swap ${into} in for ${t.target}, drop the old ${t.target}`);
        }
      }
    },

    async countRestored(ctx, plan) {
      const data = plan.data as PgRestoreData;
      const counts: Counts = {};
      for (const t of data.targets) setEntry(counts, t.db, countedAfterLoad.get(t.target) ?? (await countRestoredDb(ctx, t.target, t.db)));
      return counts;
    },

    countGroups: () => hashPartitions,

    async cleanup(ctx, plan) {
      const data = plan.data as PgRestoreData;
      if (!data.scratch) return;
      for (const t of data.targets) await dropDatabase(ctx.runner, t.target);
    },
  };

  /** psql running `sql` in the server's postgres database: creating, renaming and dropping databases. */
  function onServer(sql: string): Command {
    return ep.tool([...PSQL, '-d', conninfoDb('postgres')], { input: sql });
  }

  /** Drops a database of ours (staged, replaced, scratch): after Ctrl-C too, so nothing half-restored stays behind. */
  async function dropDatabase(runner: Runner, name: string): Promise<void> {
    await runner.uninterruptible().capture(onServer(`DROP DATABASE IF EXISTS ${quoteIdent(name)} WITH (FORCE);`));
  }
}
