// The Alembic fixture app for tests: copies test/fixtures/alembic-app (plus a variant overlay) into a temp dir,
// so Python never writes into the repository; runs scripts as child processes with stdin not a TTY.
import { spawn, spawnSync } from 'node:child_process';
import { cpSync, mkdtempSync, readdirSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { requireTools } from './tools.ts';
import { findPgBin } from '../../lib/pg-sandbox.ts';

export const REPO = resolve(fileURLToPath(new URL('../..', import.meta.url)));
export const FIXTURE = join(REPO, 'test/fixtures/alembic-app');
export type Variant = 'drift' | 'two-heads' | 'bad-downgrade' | 'merged';

/** A fresh copy of the fixture app (with a variant's files laid over it) in `parent` or a new temp dir. */
export function fixtureApp(variant?: Variant, parent?: string): string {
  const dir = join(parent ?? mkdtempSync(join(tmpdir(), 'llc-alembic-')), variant ?? 'good');
  cpSync(FIXTURE, dir, { recursive: true });
  if (variant) cpSync(join(REPO, 'test/fixtures/alembic-app-variants', variant), dir, { recursive: true });
  return dir;
}

/** Revision ids of the good fixture, base first, read from its files (not typed into the tests). */
export function fixtureRevisions(dir = FIXTURE): { id: string; down: string | null }[] {
  const files = readdirSync(join(dir, 'migrations/versions')).filter((f) => f.endsWith('.py'));
  const revs = files.map((f) => {
    const text = readFileSync(join(dir, 'migrations/versions', f), 'utf8');
    const id = /^revision = "([^"]+)"/m.exec(text)![1]!;
    const down = /^down_revision = (?:"([^"]+)"|None)/m.exec(text)![1] ?? null;
    return { id, down };
  });
  const ordered: typeof revs = [];
  let at: string | null = null;
  for (;;) {
    const next = revs.find((r) => r.down === at);
    if (!next) break;
    ordered.push(next);
    at = next.id;
  }
  return ordered;
}

/**
 * Skip reason for tests that need Debian's Alembic, PostgreSQL server binaries and client tools (a failure
 * under CI, like requireTools).
 */
export function requireAlembicStack(extra: string[] = []): string | undefined {
  const tools = requireTools(['/usr/bin/python3', 'psql', ...extra]);
  if (tools) return tools;
  const py = spawnSync('/usr/bin/python3', ['-c', 'import alembic, sqlalchemy, psycopg2'], { encoding: 'utf8' });
  const missing: string[] = [];
  if (py.status !== 0) missing.push('python3-alembic python3-sqlalchemy python3-psycopg2');
  if (!findPgBin()) missing.push('postgresql (initdb)');
  if (missing.length === 0) return undefined;
  const reason = `missing: ${missing.join(', ')} (apt-get install -y ${missing.join(' ')})`;
  if (process.env.CI) throw new Error(`CI: ${reason}`);
  return reason;
}

export interface ChildResult {
  code: number | null;
  stdout: string;
  stderr: string;
}

/** Run scripts/<name>.ts as a child process: stdin is not a TTY, the environment is the one given. */
export function runScriptChild(script: string, args: string[], env: NodeJS.ProcessEnv = process.env): Promise<ChildResult> {
  return new Promise((resolvePromise, reject) => {
    const child = spawn(process.execPath, ['--import', 'tsx', join(REPO, 'scripts', script), ...args], {
      cwd: REPO,
      env: { ...env, PYTHONDONTWRITEBYTECODE: '1' },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    child.stdout.setEncoding('utf8').on('data', (d: string) => (stdout += d));
    child.stderr.setEncoding('utf8').on('data', (d: string) => (stderr += d));
    child.on('error', reject);
    child.on('close', (code) => resolvePromise({ code, stdout, stderr }));
  });
}

/** The environment without DATABASE_URL (check-migrations reads it as a default). */
export function envWithout(...names: string[]): NodeJS.ProcessEnv {
  const env = { ...process.env };
  for (const n of names) delete env[n];
  return env;
}
