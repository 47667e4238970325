// System tools: is one on PATH; for tests, a skip reason on a laptop and a failure under CI (CI installs everything).
import { spawnSync } from 'node:child_process';
import { accessSync, constants, existsSync, readdirSync, realpathSync, statSync } from 'node:fs';
import { basename, join } from 'node:path';

export function hasTool(name: string): boolean {
  if (name.includes('/')) return existsSync(name);
  return spawnSync('sh', ['-c', 'command -v "$1"', 'sh', name], { stdio: 'ignore' }).status === 0;
}

/**
 * The skip reason for `test(name, { skip: requireTools([...]) }, fn)`, or undefined when all are present.
 * With CI set, a missing tool throws: the suite fails instead of counting a skip as a pass.
 */
export function requireTools(names: string[]): string | undefined {
  const missing = names.filter((n) => !hasTool(n));
  if (missing.length === 0) return undefined;
  const reason = `missing system tool(s): ${missing.join(', ')} (bash .ci/run installs them)`;
  if (process.env.CI) throw new Error(`CI: ${reason}`);
  return reason;
}

/** Where Debian keeps each PostgreSQL version's programs: /usr/lib/postgresql/<version>/bin. */
const PG_BINROOT = '/usr/lib/postgresql';
const resolvedPgTools = new Map<string, string>();

/**
 * The program `name` (pg_dump, pg_restore, psql, ...) as it will really run. On Debian and Ubuntu those names
 * are links to pg_wrapper, a Perl script that picks a PostgreSQL version on every call (20-30 ms each, a dozen
 * calls in a restore). With PGHOST set, pg_wrapper always runs the newest installed version's program and sets
 * PGSYSCONFDIR; `env` gets the same here and the program is run directly. Without PGHOST (a local cluster chosen
 * by port, PGCLUSTER, ~/.postgresqlrc), or when `name` is not pg_wrapper on PATH, `name` is returned unchanged.
 */
export function pgProgram(name: string, env: Record<string, string>, search = process.env.PATH ?? '', binroot = PG_BINROOT): string {
  if (!env.PGHOST || name.includes('/')) return name;
  const key = `${name}\0${search}\0${binroot}`;
  let found = resolvedPgTools.get(key);
  if (found === undefined) {
    found = name;
    const onPath = search.split(':').filter(Boolean).map((d) => join(d, name)).find((p) => isExecutable(p));
    if (onPath && basename(realpathOrSelf(onPath)) === 'pg_wrapper') {
      const versions = readdirOrEmpty(binroot)
        .filter((v) => /^\d+(?:\.\d+)?$/.test(v) && isExecutable(join(binroot, v, 'bin', name)))
        .sort((a, b) => Number(a) - Number(b));
      if (versions.length) found = join(binroot, versions.at(-1)!, 'bin', name);
    }
    resolvedPgTools.set(key, found);
  }
  if (found !== name && !env.PGSYSCONFDIR && !process.env.PGSYSCONFDIR) env.PGSYSCONFDIR = '/etc/postgresql-common';
  return found;
}

function isExecutable(path: string): boolean {
  try {
    accessSync(path, constants.X_OK);
    return statSync(path).isFile();
  } catch {
    return false;
  }
}

function realpathOrSelf(path: string): string {
  try {
    return realpathSync(path);
  } catch {
    return path;
  }
}

function readdirOrEmpty(dir: string): string[] {
  try {
    return readdirSync(dir);
  } catch {
    return [];
  }
}
