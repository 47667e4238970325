// How we call Alembic: the configured command (compose one-shot service or a local program) as argv arrays,
// parsers for `heads`, `current` and `history` output, and the revision-graph decisions migrate/rollback make.
// Debian's Alembic 1.8 has no `alembic` on PATH and no `alembic check` (DESIGN.md §10).
import { isAbsolute, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { LoadedConfig } from './config.ts';
import { need } from './config.ts';
import { OpsError, RefusedError, UsageError } from './errors.ts';
import { composeArgv, type Command, type ComposeSettings, type Runner } from './run.ts';
import { listCompleteSets, type CompleteSet } from './backup-set.ts';
import { quote } from 'zx/core';

export const DEFAULT_PYTHON = '/usr/bin/python3';
export const DEFAULT_SERVICE = 'migrations';
/** The compare_metadata helper (Alembic < 1.9 has no `alembic check`). */
export const DIFF_HELPER = fileURLToPath(new URL('./python/alembic_diff.py', import.meta.url));

export interface AlembicSettings {
  via: 'compose' | 'local';
  /** via compose: the one-shot service started with `docker compose run --rm`. */
  service: string;
  /** The alembic program, in the container (compose) or on this host (local). */
  command: string[];
  /** The Python with Alembic and the app: runs the diff helper. */
  python: string;
  /** via local: working directory of every call (the app directory). */
  cwd?: string;
  /** Passed as `-c`; absolute when local. */
  alembicConfig?: string;
  /** via local: given to the child as env DATABASE_URL, never argv. */
  databaseUrl?: string;
  compose?: ComposeSettings;
}

/** SQLAlchemy 1.4+ knows only `postgresql://`; libpq and Compose files often say `postgres://`. */
export function sqlalchemyUrl(url: string): string {
  return url.replace(/^postgres:\/\//, 'postgresql://');
}

/** The password inside a URL (decoded), for the redactor. */
export function urlPassword(url: string): string | undefined {
  try {
    const p = new URL(url).password;
    if (p) return decodeURIComponent(p);
  } catch {
    // Not a WHATWG URL (an unencoded '/', '#' or '?' in the password): read it as libpq does, below.
  }
  // scheme://user:password@host..., the password running to the last '@'.
  const m = /^[a-z][a-z0-9+.-]*:\/\/[^:/?#@]*:(.*)@[^@]*$/i.exec(url);
  if (!m?.[1]) return undefined;
  try {
    return decodeURIComponent(m[1]);
  } catch {
    return m[1];
  }
}

/** Settings for a local Alembic project (check-migrations, tests): `python -m alembic` in appDir. */
export function localSettings(opts: { appDir: string; python?: string; alembicConfig?: string; databaseUrl?: string; command?: string[] }): AlembicSettings {
  const python = opts.python ?? DEFAULT_PYTHON;
  const ini = opts.alembicConfig ?? 'alembic.ini';
  return {
    via: 'local',
    service: DEFAULT_SERVICE,
    command: opts.command ?? [python, '-m', 'alembic'],
    python,
    cwd: opts.appDir,
    alembicConfig: isAbsolute(ini) ? ini : join(opts.appDir, ini),
    databaseUrl: opts.databaseUrl,
  };
}

/** The `migrations` config section as settings; relative paths are relative to the config file. */
export function alembicSettings(loaded: LoadedConfig, compose: ComposeSettings | undefined): AlembicSettings {
  const m = need(loaded.config.migrations, 'migrations', 'to run Alembic (see docs/deployment_guide.md)');
  if (m.via === 'compose') {
    if (!compose) throw new UsageError('invalid config: compose: is required when migrations.via is compose');
    return {
      via: 'compose',
      service: m.service ?? DEFAULT_SERVICE,
      command: m.command ? [...m.command] : ['alembic'],
      python: m.python ?? DEFAULT_PYTHON,
      alembicConfig: m.alembicConfig,
      compose,
    };
  }
  const appDir = resolve(loaded.dir, m.appDir ?? '.');
  return localSettings({
    appDir,
    python: m.python,
    alembicConfig: m.alembicConfig,
    databaseUrl: m.databaseUrl,
    command: m.command ? [...m.command] : undefined,
  });
}

/** An Alembic invocation: `docker compose ... run --rm -T <service> alembic [-c ini] args` or the local command. */
export function alembicCommand(s: AlembicSettings, args: string[]): Command {
  const ini = s.alembicConfig ? ['-c', s.alembicConfig] : [];
  if (s.via === 'compose') {
    // -T: output is parsed, a pseudo-TTY would mangle it. DATABASE_URL comes from the service's own environment.
    return { argv: composeArgv(s.compose!, ['run', '--rm', '-T', s.service, ...s.command, ...ini, ...args]) };
  }
  return { argv: [...s.command, ...ini, ...args], cwd: s.cwd, env: s.databaseUrl ? { DATABASE_URL: sqlalchemyUrl(s.databaseUrl) } : {} };
}

/**
 * The deploy's own upgrade: under compose the `migrations` service with its own command (what `up` runs);
 * otherwise `alembic upgrade <target>`.
 */
export function upgradeCommand(s: AlembicSettings, target: string): Command {
  if (s.via === 'compose' && target === 'head') return { argv: composeArgv(s.compose!, ['run', '--rm', '-T', s.service]) };
  return alembicCommand(s, ['upgrade', target]);
}

/** The compare_metadata helper run like Alembic (same Python, directory and DATABASE_URL). Local only. */
export function diffCommand(s: AlembicSettings): Command {
  if (s.via !== 'local') throw new UsageError('the autogenerate check runs against a local Alembic project (--app-dir)');
  return { argv: [s.python, DIFF_HELPER, s.alembicConfig ?? 'alembic.ini'], cwd: s.cwd, env: s.databaseUrl ? { DATABASE_URL: sqlalchemyUrl(s.databaseUrl) } : {} };
}

/** Offline (`--sql`) argv: upgrade from `from` (null = empty database) to `to`, or downgrade `from` to `to`. */
export function sqlArgs(direction: 'upgrade' | 'downgrade', from: string | null, to: string): string[] {
  if (direction === 'downgrade') return ['downgrade', `${from ?? 'base'}:${to}`, '--sql'];
  return ['upgrade', from ? `${from}:${to}` : to, '--sql'];
}

// ---- parsers ---------------------------------------------------------------------------------------------

export interface Revision {
  id: string;
  /** down_revision(s); empty for a first revision. */
  parents: string[];
  head: boolean;
  current: boolean;
  branchpoint: boolean;
  mergepoint: boolean;
  message: string;
}

/**
 * A revision id as Alembic allows it: anything but whitespace and its own separators (it refuses @, - and + in
 * an id; commas and brackets would break its output). Ids like "v1.1" are valid.
 */
const ID = String.raw`[^\s@+,()\-]+`;
const REV = new RegExp(`^${ID}$`);
/** One revision on a line of `alembic heads` or `alembic current`, flags such as "(head)" after it. */
const REV_LINE = new RegExp(`^(${ID})(?: \\([^)]*\\))*\\s*$`);
/** The first line of a revision's block in `alembic history --verbose`. */
const REV_BLOCK = new RegExp(`^Rev: (${ID})((?: \\([^)]*\\))*)$`);

/** `alembic heads`: "3d2c4d5e6f03 (head)" per line; log lines and anything else are ignored. */
export function parseHeads(stdout: string): string[] {
  const out: string[] = [];
  for (const line of stdout.split('\n')) {
    const m = REV_LINE.exec(line.trim());
    if (m && /\((effective )?head\)/.test(line)) out.push(m[1]!);
  }
  // Sorted: Alembic prints several in no fixed order, and they are compared and shown as sets.
  return [...new Set(out)].sort();
}

/** `alembic current`: one revision per line, "(head)" after it when at head; nothing for an empty database. */
export function parseCurrent(stdout: string): string[] {
  const out: string[] = [];
  for (const line of stdout.split('\n')) {
    const m = REV_LINE.exec(line.trim());
    if (m && !/^(INFO|WARN|WARNING|ERROR|DEBUG)$/.test(m[1]!)) out.push(m[1]!);
  }
  // Sorted: with several branches applied Alembic prints them in no fixed order (two runs differ), and a plan
  // compared with what a later read finds must not see a move in that.
  return [...new Set(out)].sort();
}

/**
 * `alembic history --verbose`, newest first: per revision a block of unindented fields ("Rev: <id> (head)
 * (branchpoint)", "Parent: <id>|<base>" or "Merges: <id>, <id>", "Also depends on: ...", "Path: ...") and then
 * its docstring indented by four spaces; the first docstring line is the message. The one-line form ("<parents>
 * -> <rev>, message") cannot be read safely: a docstring whose first paragraph has a second line such as
 * "old_name -> new_name" continues on a line of its own.
 */
export function parseHistory(stdout: string): Revision[] {
  const revs: Revision[] = [];
  let cur: Revision | undefined;
  for (const raw of stdout.split('\n')) {
    const line = raw.trimEnd();
    const rev = REV_BLOCK.exec(line);
    if (rev) {
      const flags = rev[2] ?? '';
      cur = {
        id: rev[1]!,
        parents: [],
        head: /\((effective )?head\)/.test(flags),
        current: flags.includes('(current)'),
        branchpoint: flags.includes('(branchpoint)'),
        mergepoint: flags.includes('(mergepoint)'),
        message: '',
      };
      revs.push(cur);
      continue;
    }
    if (!cur) continue;
    const parent = /^(?:Parent|Merges): (.*)$/.exec(line);
    if (parent) {
      cur.parents = parent[1] === '<base>' ? [] : parent[1]!.split(',').map((p) => p.trim()).filter((p) => REV.test(p));
      continue;
    }
    if (!cur.message && /^ {4}\S/.test(raw)) cur.message = line.trim();
  }
  return revs;
}

/** The revision Alembic was running when it failed: its last "Running upgrade|downgrade A -> B" log line. */
export function lastRunning(stderr: string): { direction: 'upgrade' | 'downgrade'; revision: string; from: string; to: string } | undefined {
  let found: ReturnType<typeof lastRunning>;
  for (const m of stderr.matchAll(/Running (upgrade|downgrade) ([^>\n]*?) -> ([^,\n]*?)(?:,|$)/gm)) {
    const direction = m[1] as 'upgrade' | 'downgrade';
    const from = m[2]!.trim();
    const to = m[3]!.trim();
    // An upgrade applies its target; a downgrade reverts its source.
    found = { direction, from, to, revision: direction === 'upgrade' ? to : from };
  }
  return found;
}

/** The one line that says why Alembic failed: its "FAILED:" message, else the exception line of a traceback. */
export function alembicFailure(stdout: string, stderr: string): string {
  const failed = stdout.split('\n').find((l) => l.startsWith('FAILED: '));
  if (failed) return failed.slice('FAILED: '.length).trim();
  const lines = stderr.split('\n').map((l) => l.trimEnd()).filter(Boolean);
  const exception = lines.filter((l) => /^[A-Za-z_][\w.]*(Error|Exception|Exit)\b.*:/.test(l)).at(-1);
  // The last frame of the app's own code (a migration or env.py, not a library) says where: a syntax error names
  // its file only there.
  const frame = lines
    .map((l) => /^\s*File "([^"]+)", line (\d+)/.exec(l))
    .filter((m): m is RegExpExecArray => m !== null && !/[/\\](?:site|dist)-packages[/\\]|[/\\]lib[/\\]python3[^/\\]*[/\\]|^</.test(m[1]!))
    .at(-1);
  // A down_revision naming a revision that does not exist ends in a bare KeyError; Alembic's warning before it
  // says which revision refers to it.
  const missing = /UserWarning: Revision (\S+) referenced from (.*?) is not present/.exec(stderr);
  if (missing && exception && /^KeyError\b/.test(exception)) return `revision ${missing[1]} is not in the migrations, but ${missing[2]} names it as its down_revision`;
  if (exception) return frame ? `${exception} (${frame[1]}, line ${frame[2]})` : exception;
  const plain = lines.filter((l) => !/^(INFO|WARNI?N?G?|DEBUG)\s/.test(l) && !/^\s/.test(l)).at(-1);
  return plain ?? lines.at(-1) ?? 'no output';
}

/** "Can't locate revision identified by 'x'": the database names a revision the migrations do not have. */
export function unknownRevision(text: string): string | undefined {
  return /Can't locate revision identified by '([^']+)'/.exec(text)?.[1];
}

// ---- running ----------------------------------------------------------------------------------------------

export class AlembicError extends OpsError {
  constructor(
    readonly step: string,
    readonly reason: string,
    readonly revision: string | undefined,
    readonly output: { stdout: string; stderr: string },
    /** What Alembic was doing to `revision` when it failed. */
    readonly direction?: 'upgrade' | 'downgrade',
  ) {
    super(`alembic ${step}${revision ? `: ${direction ?? 'migration'} of revision ${revision} failed` : ' failed'}: ${reason}`);
  }
}

export interface AlembicRun {
  stdout: string;
  stderr: string;
}

/** Run Alembic; a failure becomes an AlembicError naming the revision it was running and Alembic's reason. */
export async function runAlembic(runner: Runner, cmd: Command, step: string, opts: { readOnly?: boolean } = {}): Promise<AlembicRun> {
  const r = await runner.capture(cmd, { readOnly: opts.readOnly, allowFailure: true });
  if (r.code !== 0) {
    const reason = alembicFailure(r.stdout, r.stderr);
    const running = lastRunning(r.stderr);
    throw new AlembicError(step, reason, running?.revision, { stdout: r.stdout, stderr: r.stderr }, running?.direction);
  }
  return { stdout: r.stdout, stderr: r.stderr };
}

export interface MigrationState {
  /** Newest first, as Alembic prints them. */
  history: Revision[];
  heads: string[];
  /** The database's revision(s); empty for a database Alembic never touched. */
  current: string[];
}

/**
 * `alembic history` (no database) and `alembic current`. Not `history -i`: it creates alembic_version in an
 * empty database, and a dry run must change nothing.
 */
export async function readState(runner: Runner, s: AlembicSettings): Promise<MigrationState> {
  const history = parseHistory((await runAlembic(runner, alembicCommand(s, ['history', '--verbose']), 'history', { readOnly: true })).stdout);
  if (history.length === 0) throw new OpsError('alembic history lists no revisions: is the Alembic project (alembic.ini, script_location) the right one?');
  let current: string[];
  try {
    current = parseCurrent((await runAlembic(runner, alembicCommand(s, ['current']), 'current', { readOnly: true })).stdout);
  } catch (err) {
    const unknown = err instanceof AlembicError ? unknownRevision(err.reason) : undefined;
    if (unknown) {
      throw new RefusedError(`the database is at revision ${unknown}, which the migrations do not know`, [
        'it was probably migrated by a newer version of the app: deploy that version, or restore the pre-migration backup set',
      ]);
    }
    throw err;
  }
  const known = new Set(history.map((r) => r.id));
  const strange = current.filter((c) => !known.has(c));
  if (strange.length) throw new RefusedError(`the database is at revision ${strange.join(', ')}, which the migrations do not know`);
  return { history, heads: history.filter((h) => h.head).map((h) => h.id), current };
}

// ---- the revision graph (pure) -----------------------------------------------------------------------------

function byId(history: Revision[]): Map<string, Revision> {
  return new Map(history.map((r) => [r.id, r]));
}

/** The revision and everything below it. */
export function ancestorsOrSelf(history: Revision[], id: string | null): Set<string> {
  const map = byId(history);
  const seen = new Set<string>();
  const stack = id ? [id] : [];
  while (stack.length) {
    const r = stack.pop()!;
    if (seen.has(r)) continue;
    seen.add(r);
    stack.push(...(map.get(r)?.parents ?? []));
  }
  return seen;
}

/** Base first: every revision after all of its parents (Alembic prints history newest first). */
export function baseFirst(history: Revision[]): Revision[] {
  return [...history].reverse();
}

/**
 * A revision reference as the operator wrote it: a full id, a unique prefix (as Alembic accepts), "head"
 * (exactly one head) or "base" (null).
 */
export function resolveRevision(history: Revision[], ref: string): string | null {
  if (ref === 'base') return null;
  if (ref === 'head') {
    const heads = history.filter((r) => r.head).map((r) => r.id).sort();
    if (heads.length !== 1) throw new RefusedError(`the migrations have ${heads.length} heads: ${heads.join(', ')}`, ['merge them (alembic merge) before deploying']);
    return heads[0]!;
  }
  const exact = history.find((r) => r.id === ref);
  if (exact) return exact.id;
  // "--to 1" is more likely "-1" mistyped than the prefix of a revision that starts with 1.
  if (ref.length < 4) throw new UsageError(`revision ${JSON.stringify(ref)}: a revision prefix needs at least 4 characters${/^\d+$/.test(ref) ? ` (steps down are written -${ref})` : ''}`);
  const matches = history.filter((r) => r.id.startsWith(ref));
  if (matches.length === 1) return matches[0]!.id;
  if (matches.length > 1) throw new UsageError(`revision ${ref} is ambiguous: ${matches.map((m) => m.id).join(', ')}`);
  throw new UsageError(`no revision ${ref} in the migrations (known: ${history.map((r) => r.id).join(', ')})`);
}

/** Revisions an upgrade from `current` to `target` applies, in the order it applies them. */
export function pendingRevisions(history: Revision[], current: string[], target: string): Revision[] {
  const have = new Set(current.flatMap((c) => [...ancestorsOrSelf(history, c)]));
  const want = ancestorsOrSelf(history, target);
  return baseFirst(history).filter((r) => want.has(r.id) && !have.has(r.id));
}

/**
 * Revisions `alembic downgrade <target>` reverts from `current` (null = base: all of them), in the order it reverts
 * them: the applied revisions that descend from the target. Another branch applied beside it stays applied
 * (Alembic unmerges a merge down to one parent and leaves the other).
 */
export function revertedRevisions(history: Revision[], current: string[], target: string | null): Revision[] {
  const have = new Set(current.flatMap((c) => [...ancestorsOrSelf(history, c)]));
  if (target === null) return history.filter((r) => have.has(r.id));
  return history.filter((r) => have.has(r.id) && r.id !== target && ancestorsOrSelf(history, r.id).has(target));
}

/** Where the database is after `alembic downgrade <target>` from `current`: the heads of what stays applied, sorted. */
export function afterDowngrade(history: Revision[], current: string[], target: string | null): string[] {
  const reverted = new Set(revertedRevisions(history, current, target).map((r) => r.id));
  const left = [...new Set(current.flatMap((c) => [...ancestorsOrSelf(history, c)]))].filter((id) => !reverted.has(id));
  const map = byId(history);
  const below = new Set(left.flatMap((id) => map.get(id)?.parents ?? []));
  return left.filter((id) => !below.has(id)).sort();
}

/** A downgrade target that leaves another branch applied (the database on two revisions) is refused. */
function refuseSplit(history: Revision[], current: string[], target: string | null, to: string): void {
  const after = afterDowngrade(history, current, target);
  if (after.length <= 1) return;
  const others = after.filter((id) => id !== target);
  throw new RefusedError(`--to ${to}: Alembic would revert only what descends from ${target} and leave ${others.join(', ')} applied: the database would be at ${after.join(', ')}`, [
    'pass --to a revision below every applied branch (where they fork), then upgrade to where you want to be',
  ]);
}

/**
 * Where `rollback` goes: "-N" steps down from the single current revision (default -1), or a revision /
 * "base" that must lie below it. Returns null for base.
 */
export function rollbackTarget(history: Revision[], current: string[], to: string | undefined): string | null {
  if (current.length !== 1) {
    // Several branches applied: only a named revision says where to go (what is above it, on any branch, goes).
    if (to === undefined || /^-\d+$/.test(to)) {
      throw new RefusedError(`the database is at ${current.length} revisions (${current.join(', ')}): pass --to <revision> to say where to go back to`);
    }
    const target = resolveRevision(history, to);
    if (revertedRevisions(history, current, target).length === 0) throw new UsageError(`--to ${to}: nothing applied (${current.join(', ')}) descends from revision ${target ?? 'base'}`);
    refuseSplit(history, current, target, to);
    return target;
  }
  const from = current[0]!;
  const rel = /^-(\d+)$/.exec(to ?? '-1');
  if (rel && Number(rel[1]) === 0) throw new UsageError(`--to ${to}: zero steps is no rollback (-1 goes one revision down)`);
  if (rel) {
    let at: string | null = from;
    const map = byId(history);
    for (let i = 0; i < Number(rel[1]); i++) {
      if (at === null) throw new UsageError(`--to ${to}: there are fewer than ${rel[1]} revisions below ${from}`);
      const parents: string[] = map.get(at)?.parents ?? [];
      if (parents.length > 1) throw new RefusedError(`revision ${at} merges ${parents.join(', ')}: pass --to <revision> to say which branch to go back to`);
      at = parents[0] ?? null;
    }
    return at;
  }
  const target = resolveRevision(history, to!);
  if (target === from || (target !== null && !ancestorsOrSelf(history, from).has(target))) {
    throw new UsageError(`--to ${to}: revision ${target} is not below the current revision ${from}`);
  }
  refuseSplit(history, current, target, to!);
  return target;
}

// ---- the way back ---------------------------------------------------------------------------------------

/** The complete backup sets carrying `tag`, oldest first (migrate tags its sets pre-migration). */
export async function taggedSets(root: string, tag: string): Promise<CompleteSet[]> {
  return (await listCompleteSets(root)).filter((s) => s.manifest.tags.includes(tag));
}

/** The exact command that puts the database back as it was before a migration. */
export function restoreCommand(setId: string, configPath?: string): string {
  return `npx tsx scripts/restore-all.ts --from ${setId} --only postgres --force --yes${configPath ? ` --config ${quote(configPath)}` : ''}`;
}

export const PRE_MIGRATION_TAG = 'pre-migration';
export const PRE_ROLLBACK_TAG = 'pre-rollback';

/** "3d2c4d5e6f03", "a, b" or "base (no revision)" for messages. */
export function describeRevisions(current: string[]): string {
  return current.length ? current.join(', ') : 'base (no revision)';
}
