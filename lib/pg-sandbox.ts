// A throwaway PostgreSQL cluster from the host's binaries: for the demo, the tests, the benchmark and
// check-migrations. initdb refuses root, so as root the cluster runs as the `postgres` user (DESIGN.md §10).
import { execFileSync, spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, rmSync, writeFileSync, chmodSync, chownSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir, userInfo } from 'node:os';
import { join } from 'node:path';

export interface PgSandbox {
  /** Directory holding data, socket and log. */
  dir: string;
  port: number;
  /** Superuser name; its password (scram over TCP) is `password`. */
  user: string;
  password: string;
  binDir: string;
  version: number;
  /** postgresql://user@127.0.0.1:port/db (no password: pass it via PGPASSWORD or config). */
  url(db?: string): string;
  /** Run SQL as the superuser over the socket; returns psql's unaligned, tuples-only output. */
  sql(sql: string, db?: string): string;
  /** sql() without blocking: for long loads that Ctrl-C must be able to stop. */
  sqlAsync(sql: string, db?: string, signal?: AbortSignal): Promise<string>;
  stop(): void;
  /** Stop and remove everything. */
  destroy(): void;
}

/** The newest PostgreSQL bin directory on this host, or null. */
export function findPgBin(): { binDir: string; version: number } | null {
  const base = '/usr/lib/postgresql';
  const candidates: { binDir: string; version: number }[] = [];
  if (existsSync(base)) {
    for (const v of readdirSync(base)) {
      const binDir = join(base, v, 'bin');
      if (/^\d+$/.test(v) && existsSync(join(binDir, 'initdb')) && existsSync(join(binDir, 'postgres'))) candidates.push({ binDir, version: Number(v) });
    }
  }
  candidates.sort((a, b) => b.version - a.version);
  return candidates[0] ?? null;
}

export const PG_INSTALL_HINT = 'PostgreSQL server binaries not found: install them with `sudo apt-get install postgresql-15 zstd` (Debian/Ubuntu), or any PostgreSQL 15+ server package that provides /usr/lib/postgresql/<version>/bin/initdb';

export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.unref();
    srv.on('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const addr = srv.address();
      srv.close(() => (typeof addr === 'object' && addr ? resolve(addr.port) : reject(new Error('no port'))));
    });
  });
}

function asPostgres(argv: string[]): string[] {
  return userInfo().uid === 0 ? ['runuser', '-u', 'postgres', '--', ...argv] : argv;
}

export async function startPgSandbox(opts: { password?: string; prefix?: string } = {}): Promise<PgSandbox> {
  const found = findPgBin();
  if (!found) throw new Error(PG_INSTALL_HINT);
  const { binDir, version } = found;
  const dir = mkdtempSync(join(tmpdir(), opts.prefix ?? 'llc-pg-'));
  chmodSync(dir, 0o755);
  const root = userInfo().uid === 0;
  if (root) {
    const uid = Number(execFileSync('id', ['-u', 'postgres']).toString().trim());
    const gid = Number(execFileSync('id', ['-g', 'postgres']).toString().trim());
    chownSync(dir, uid, gid);
  }
  const user = 'postgres';
  const password = opts.password ?? `pw-${Math.random().toString(36).slice(2)}-${Date.now().toString(36)}`;
  const data = join(dir, 'data');
  const pwfile = join(dir, 'pwfile');
  writeFileSync(pwfile, `${password}\n`, { mode: 0o600 });
  if (root) execFileSync('chown', ['postgres', pwfile]);
  const run = (argv: string[]) => {
    const full = asPostgres(argv);
    const r = spawnSync(full[0]!, full.slice(1), { encoding: 'utf8' });
    if (r.status !== 0) throw new Error(`${argv.join(' ')} failed: ${r.stderr || r.stdout}`);
    return r.stdout;
  };
  run([join(binDir, 'initdb'), '-D', data, '-U', user, '--pwfile', pwfile, '--auth-local=trust', '--auth-host=scram-sha-256', '-E', 'UTF8', '--locale=C', '--no-sync']);
  rmSync(pwfile);
  const port = await freePort();
  // Settings go into the config file, so pg_ctl needs no option string.
  writeFileSync(
    join(data, 'postgresql.auto.conf'),
    [`port = ${port}`, `listen_addresses = '127.0.0.1'`, `unix_socket_directories = '${dir}'`, 'fsync = off', 'synchronous_commit = off', 'full_page_writes = off', 'max_connections = 50', ''].join('\n'),
  );
  if (root) execFileSync('chown', ['postgres', join(data, 'postgresql.auto.conf')]);
  const log = join(dir, 'server.log');
  run([join(binDir, 'pg_ctl'), '-D', data, '-l', log, '-w', '-t', '60', 'start']);
  let stopped = false;
  const psqlArgs = (db: string) => ['-X', '-q', '-A', '-t', '-v', 'ON_ERROR_STOP=1', '-h', dir, '-p', String(port), '-U', user, '-d', `dbname='${db.replace(/\\/g, '\\\\').replace(/'/g, "\\'")}'`];
  const sandbox: PgSandbox = {
    dir,
    port,
    user,
    password,
    binDir,
    version,
    url: (db = 'postgres') => `postgresql://${user}@127.0.0.1:${port}/${encodeURIComponent(db)}`,
    sql(sql: string, db = 'postgres') {
      const r = spawnSync(join(binDir, 'psql'), psqlArgs(db), {
        input: sql,
        encoding: 'utf8',
        maxBuffer: 256 * 1024 * 1024,
      });
      if (r.status !== 0) throw new Error(`psql failed: ${r.stderr}`);
      return r.stdout.trim();
    },
    async sqlAsync(sql: string, db = 'postgres', signal?: AbortSignal) {
      // The same psql as sql(), without blocking the event loop: a Ctrl-C during a long load is acted on at once.
      const child = spawn(join(binDir, 'psql'), psqlArgs(db), {
        stdio: ['pipe', 'pipe', 'pipe'],
        signal,
      });
      let stdout = '';
      let stderr = '';
      child.stdout.setEncoding('utf8').on('data', (d: string) => (stdout += d));
      child.stderr.setEncoding('utf8').on('data', (d: string) => (stderr = (stderr + d).slice(-8000)));
      child.stdin.on('error', () => {});
      child.stdin.end(sql);
      const code = await new Promise<number | null>((resolve, reject) => {
        child.on('error', reject);
        child.on('close', resolve);
      });
      if (code !== 0) throw new Error(`psql failed: ${stderr}`);
      return stdout.trim();
    },
    stop() {
      if (stopped) return;
      stopped = true;
      try {
        run([join(binDir, 'pg_ctl'), '-D', data, '-m', 'fast', '-w', 'stop']);
      } catch {
        // already down
      }
    },
    destroy() {
      sandbox.stop();
      rmSync(dir, { recursive: true, force: true });
    },
  };
  return sandbox;
}
