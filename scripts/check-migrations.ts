// check-migrations (CI): one head, `upgrade head` from empty, an empty autogenerate diff, and the stairway
// (upgrade / downgrade / upgrade each revision), against an empty scratch database or a throwaway cluster.
// Example: npx tsx scripts/check-migrations.ts --app-dir ../llc-app --json
import { existsSync } from 'node:fs';
import { resolve } from 'node:path';
import { runScript, startIfEntry, type CommandSpec, type ScriptContext } from '../lib/cli.ts';
import { defaultConfigPath, loadConfig, type PostgresConfig } from '../lib/config.ts';
import { EXIT, OpsError, RefusedError, UsageError } from '../lib/errors.ts';
import { Runner } from '../lib/run.ts';
import { startPgSandbox, findPgBin, PG_INSTALL_HINT, type PgSandbox } from '../lib/pg-sandbox.ts';
import { conninfoDb, pgEndpoint } from '../lib/sources/postgres.ts';
import {
  AlembicError,
  alembicCommand,
  baseFirst,
  diffCommand,
  localSettings,
  parseHeads,
  parseHistory,
  runAlembic,
  sqlalchemyUrl,
  urlPassword,
  type AlembicSettings,
  type Revision,
} from '../lib/alembic.ts';

export const spec: CommandSpec = {
  name: 'check-migrations',
  summary: 'CI check of the Alembic migrations: single head, upgrade from empty, empty autogenerate diff, stairway',
  examples: [
    'npx tsx scripts/check-migrations.ts --app-dir ../llc-app',
    'DATABASE_URL=postgresql://postgres:postgres@127.0.0.1:5432/ci npx tsx scripts/check-migrations.ts --app-dir . --json',
    'npx tsx scripts/check-migrations.ts --app-dir . --python .venv/bin/python --database-url postgresql://ci@127.0.0.1:5432/ci',
  ],
  mutating: false,
  flags: {
    'database-url': {
      type: 'string',
      value: 'URL',
      description: 'an EMPTY scratch database (default: env DATABASE_URL; without either a throwaway cluster is started); its password reaches children by env only',
    },
    'app-dir': { type: 'string', value: 'DIR', description: 'the Alembic project (holding alembic.ini); default migrations.appDir of the config, else the working directory' },
    python: { type: 'string', value: 'PATH', description: 'the Python that has Alembic, SQLAlchemy, psycopg2 and the app (default /usr/bin/python3)' },
    'alembic-config': { type: 'string', value: 'FILE', description: 'alembic.ini, relative to the app directory (default alembic.ini)' },
  },
  notes: [
    'The database must be empty: it is upgraded and downgraded (exit 5 otherwise). It is left at head.',
    'Exit 1 names the failing step (heads, upgrade, autogenerate, stairway) and the revision.',
  ],
};

type StepName = 'heads' | 'upgrade' | 'autogenerate' | 'stairway';

export interface StepReport {
  step: StepName;
  status: 'ok' | 'failed' | 'skipped';
  revision?: string;
  message: string;
  details: string[];
}

interface DiffResult {
  heads: string[];
  current: string[];
  diffs: { op: string; table: string | null; column: string | null; name: string | null; text: string }[];
  error: string | null;
}

const MARKER = 'LLC_OPS_DIFF ';

/** The helper's JSON line (env.py or the app may print other lines around it). */
export function parseDiffOutput(stdout: string): DiffResult {
  const line = stdout.split('\n').filter((l) => l.startsWith(MARKER)).at(-1);
  if (!line) throw new OpsError('the autogenerate helper printed no result');
  return JSON.parse(line.slice(MARKER.length)) as DiffResult;
}

/**
 * Where downgrading "one step" below `rev` goes: its parent or base. Below a merge, Alembic refuses `<rev>-1`
 * ("Ambiguous walk"): the first parent, which also unapplies the other branches' revisions the merge joined
 * (the next upgrade applies them again).
 */
export function stepBelow(rev: Revision): string {
  if (rev.parents.length === 0) return 'base';
  return rev.parents[0]!;
}

const NOT_EMPTY_SQL = `SELECT (SELECT count(*) FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
    WHERE c.relkind IN ('r', 'p', 'v', 'm', 'S', 'f') AND n.nspname NOT IN ('pg_catalog', 'information_schema') AND n.nspname !~ '^pg_(toast|temp)')
  + (SELECT count(*) FROM pg_type t JOIN pg_namespace n ON n.oid = t.typnamespace
    WHERE t.typtype IN ('e', 'd') AND n.nspname NOT IN ('pg_catalog', 'information_schema'));`;

/** --database-url as a URL, or a usage error naming the flag (never the URL: it may hold the password). */
function parseUrl(url: string): URL {
  try {
    return new URL(url);
  } catch {
    throw new UsageError('--database-url is not a valid URL (postgresql://user:password@host:port/db; a port is 1-65535, special characters in the password %-escaped)');
  }
}

/** Refuse a database that holds anything: the check upgrades and downgrades it. */
async function refuseNonEmpty(runner: Runner, url: string): Promise<void> {
  const parsed = parseUrl(url);
  const db = decodeURIComponent(parsed.pathname.replace(/^\//, ''));
  if (!db) throw new UsageError('--database-url must name a database (postgresql://user@host:port/DB)');
  const ep = pgEndpoint({ via: 'local', url, databases: [db] } as PostgresConfig, undefined);
  const r = await runner.capture(ep.tool(['psql', '-X', '-q', '-A', '-t', '-v', 'ON_ERROR_STOP=1', '-d', conninfoDb(db)], { input: NOT_EMPTY_SQL }), { readOnly: true });
  const n = Number(r.stdout.trim());
  if (n > 0) {
    throw new RefusedError(`database ${db} on ${ep.where} is not empty (${n} relations or types): check-migrations upgrades and downgrades it`, [
      'give it an empty scratch database, or no --database-url to use a throwaway cluster',
    ]);
  }
}

interface Where {
  url: string;
  label: string;
  sandbox?: PgSandbox;
}

async function scratchDatabase(ctx: ScriptContext, runner: Runner, given: string | undefined): Promise<Where> {
  if (given) {
    if (!/^postgres(ql)?:\/\//.test(given)) throw new UsageError('--database-url must start with postgresql://');
    const password = urlPassword(given);
    if (password) ctx.out.redactor.add(password);
    await refuseNonEmpty(runner, given);
    const u = parseUrl(given);
    return { url: given, label: `${u.hostname}:${u.port || 5432}${u.pathname}` };
  }
  if (!findPgBin()) throw new UsageError(`no --database-url and no local PostgreSQL for a throwaway cluster: ${PG_INSTALL_HINT}`);
  const sandbox = await ctx.out.step('start a throwaway PostgreSQL cluster', () => startPgSandbox({ prefix: 'llc-check-migrations-' }));
  ctx.out.redactor.add(sandbox.password);
  sandbox.sql('CREATE DATABASE llc_check;');
  const u = new URL(sandbox.url('llc_check'));
  u.password = encodeURIComponent(sandbox.password);
  return { url: u.toString(), label: `throwaway cluster 127.0.0.1:${sandbox.port}/llc_check`, sandbox };
}

function failed(step: StepName, err: unknown, fallback?: string): StepReport {
  if (err instanceof AlembicError) {
    const revision = err.revision ?? fallback;
    const message = revision ? `${err.direction ?? 'migration'} of revision ${revision} failed (alembic ${err.step}): ${err.reason}` : `alembic ${err.step} failed: ${err.reason}`;
    return { step, status: 'failed', revision, message, details: [] };
  }
  return { step, status: 'failed', revision: fallback, message: err instanceof Error ? err.message : String(err), details: [] };
}

/** The four checks in order; a failed `heads` or `upgrade` stops the rest (they cannot mean anything then). */
export async function checkMigrations(runner: Runner, s: AlembicSettings, out: ScriptContext['out']): Promise<{ steps: StepReport[]; revisions: Revision[] }> {
  const steps: StepReport[] = [];
  const alembic = (args: string[], step: string, readOnly = false) => runAlembic(runner, alembicCommand(s, args), step, { readOnly });
  const skip = (...names: StepName[]) => names.forEach((step) => steps.push({ step, status: 'skipped', message: 'skipped: an earlier step failed', details: [] }));

  // (1) exactly one head; a history Alembic cannot read (a syntax error, a missing down_revision) fails it too
  let history: Revision[];
  let heads: string[];
  try {
    history = parseHistory((await alembic(['history', '--verbose'], 'history', true)).stdout);
    heads = parseHeads((await alembic(['heads'], 'heads', true)).stdout);
    if (history.length === 0) throw new OpsError('alembic history lists no revisions: is --app-dir the Alembic project, with its versions directory?');
  } catch (err) {
    if (!(err instanceof OpsError) || err.exitCode !== EXIT.failed) throw err; // AlembicError is one
    steps.push(failed('heads', err));
    skip('upgrade', 'autogenerate', 'stairway');
    return { steps, revisions: [] };
  }
  const describe = (id: string) => `${id}: ${history.find((r) => r.id === id)?.message ?? ''}`.replace(/: $/, '');
  if (heads.length !== 1) {
    steps.push({ step: 'heads', status: 'failed', message: `${heads.length} heads: ${heads.join(', ')} (merge them with alembic merge)`, details: heads.map(describe) });
    skip('upgrade', 'autogenerate', 'stairway');
    return { steps, revisions: history };
  }
  steps.push({ step: 'heads', status: 'ok', revision: heads[0], message: `one head: ${heads[0]}`, details: [] });
  out.ok(`heads: one head ${heads[0]} (${history.length} revisions)`);

  // (2) upgrade head from empty
  try {
    await out.step('upgrade head from an empty database', () => alembic(['upgrade', 'head'], 'upgrade head'));
    steps.push({ step: 'upgrade', status: 'ok', revision: heads[0], message: 'upgrade head from empty succeeded', details: [] });
  } catch (err) {
    steps.push(failed('upgrade', err));
    skip('autogenerate', 'stairway');
    return { steps, revisions: history };
  }

  // (3) the models and the migrated schema agree
  try {
    const diff = parseDiffOutput(
      (await out.step('autogenerate diff (compare_metadata)', () => runAlembic(runner, diffCommand(s), 'autogenerate diff', { readOnly: true }))).stdout,
    );
    if (diff.error) {
      steps.push({ step: 'autogenerate', status: 'failed', message: diff.error, details: [] });
    } else if (diff.current.join() !== diff.heads.join()) {
      steps.push({ step: 'autogenerate', status: 'failed', message: `database at ${diff.current.join(', ') || 'no revision'} after upgrade head, heads are ${diff.heads.join(', ')}`, details: [] });
    } else if (diff.diffs.length > 0) {
      steps.push({
        step: 'autogenerate',
        status: 'failed',
        revision: heads[0],
        message: `${diff.diffs.length} difference${diff.diffs.length > 1 ? 's' : ''} between the models and the migrated schema: a model change has no migration`,
        details: diff.diffs.map((d) => `${d.text} (${d.op})`),
      });
    } else {
      steps.push({ step: 'autogenerate', status: 'ok', message: 'models and migrated schema agree', details: [] });
    }
  } catch (err) {
    steps.push(failed('autogenerate', err));
  }

  // (4) stairway: back to empty, then each revision up, one step down, up again
  const order = baseFirst(history);
  let at: string | undefined;
  try {
    await out.step('stairway: downgrade to base', () => alembic(['downgrade', 'base'], 'downgrade base'));
    for (const rev of order) {
      at = rev.id;
      await out.step(`stairway: ${rev.id} up, down to ${stepBelow(rev)}, up`, async () => {
        await alembic(['upgrade', rev.id], `upgrade ${rev.id}`);
        await alembic(['downgrade', stepBelow(rev)], `downgrade ${rev.id}`).catch((err: unknown) => {
          // The revision being reverted is the one at fault, whatever Alembic's log says.
          if (err instanceof AlembicError) throw new AlembicError(err.step, err.reason, rev.id, err.output, 'downgrade');
          throw err;
        });
        await alembic(['upgrade', rev.id], `upgrade ${rev.id} again`);
      });
    }
    steps.push({ step: 'stairway', status: 'ok', message: `${order.length} revisions upgrade, downgrade and upgrade again`, details: [] });
  } catch (err) {
    // Failing before Alembic logs "Running ..." (a revision without downgrade()): the reason names its module.
    const named = err instanceof AlembicError && !err.revision ? history.find((r) => err.reason.includes(r.id))?.id : undefined;
    steps.push(failed('stairway', err, at ?? named));
  }
  return { steps, revisions: history };
}

export function main(argv: string[]): Promise<number> {
  return runScript(spec, argv, async (ctx) => {
    const out = ctx.out;
    // The config is optional here (CI often has none): read it only when one is named or present.
    const configPath = defaultConfigPath({ configPath: ctx.values.config as string | undefined });
    const loaded = ctx.values.config || existsSync(configPath) ? loadConfig({ configPath: ctx.values.config as string | undefined, envFile: ctx.values.dotenv as string | undefined }) : undefined;
    for (const secret of loaded?.secrets ?? []) out.redactor.add(secret);
    const m = loaded?.config.migrations;
    const appDir = ctx.values['app-dir']
      ? resolve(ctx.values['app-dir'] as string)
      : m?.via === 'local' && loaded
        ? resolve(loaded.dir, m.appDir ?? '.')
        : process.cwd();
    const iniName = (ctx.values['alembic-config'] as string | undefined) ?? (m?.via === 'local' ? m.alembicConfig : undefined) ?? 'alembic.ini';
    const ini = resolve(appDir, iniName);
    if (!existsSync(ini)) throw new UsageError(`no ${iniName} in ${appDir}: pass --app-dir DIR (the Alembic project)`);
    const python = (ctx.values.python as string | undefined) ?? m?.python;
    const runner = new Runner({ out, signal: ctx.signal });
    const given = (ctx.values['database-url'] as string | undefined) ?? (process.env.DATABASE_URL || undefined);
    const where = await scratchDatabase(ctx, runner, given);
    try {
      out.info(`check-migrations: ${appDir} against ${where.label}`);
      const settings = localSettings({ appDir, python, alembicConfig: ini, databaseUrl: sqlalchemyUrl(where.url) });
      const { steps, revisions } = await checkMigrations(runner, settings, out);
      for (const st of steps.filter((x) => x.status !== 'ok')) {
        const line = `${st.step}: ${st.message}`;
        if (st.status === 'skipped') out.warn(line);
        else out.error(line);
        for (const d of st.details) out.error(`  ${d}`);
      }
      const bad = steps.filter((x) => x.status === 'failed');
      out.result({ ok: bad.length === 0, database: where.sandbox ? 'throwaway' : 'given', appDir, revisions: revisions.map((r) => ({ id: r.id, parents: r.parents, message: r.message })), steps });
      if (bad.length) {
        out.error(`check-migrations failed: ${bad.map((b) => `${b.step}${b.revision ? ` (revision ${b.revision})` : ''}`).join(', ')}`);
        return EXIT.failed;
      }
      out.ok(`check-migrations passed: ${revisions.length} revisions, one head, no drift, stairway clean`);
      return EXIT.ok;
    } finally {
      where.sandbox?.destroy();
    }
  });
}

startIfEntry(import.meta.url, main);
