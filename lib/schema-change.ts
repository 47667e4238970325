// What migrate and rollback share around Alembic: the set-up, the backup taken first, the SQL of a dry run, and
// reading where the database is afterwards.
import type { ScriptContext } from './cli.ts';
import { RefusedError, UsageError } from './errors.ts';
import { setUp, type Ops } from './ops.ts';
import { runBackup } from './backup.ts';
import type { Lock } from './lock.ts';
import type { Output } from './output.ts';
import { alembicCommand, alembicSettings, parseCurrent, runAlembic, urlPassword, type AlembicSettings } from './alembic.ts';

export interface SchemaChange {
  ops: Ops;
  settings: AlembicSettings;
  noBackup: boolean;
}

/** Config, Alembic settings (the URL's password taught to the redactor) and the --no-backup decision. */
export function openSchemaChange(ctx: ScriptContext, script: string): SchemaChange {
  const ops = setUp(ctx);
  const settings = alembicSettings(ops.loaded, ops.sourceContext.compose);
  ctx.out.redactor.add(settings.databaseUrl ? urlPassword(settings.databaseUrl) : undefined);
  const noBackup = Boolean(ctx.values['no-backup']);
  if (!noBackup && !ops.loaded.config.sources?.postgres) {
    throw new UsageError(`${script} takes a backup of sources.postgres first: configure it, or pass --no-backup`);
  }
  return { ops, settings, noBackup };
}

/** The tag that records the revision a pre-change set was taken at (at-<rev>), where the id can be a tag. */
export function revisionTag(current: string[]): string | undefined {
  const tag = current.length === 0 ? 'at-base' : current.length === 1 ? `at-${current[0]}` : undefined;
  return tag && /^[a-z0-9][a-z0-9-]*$/.test(tag) ? tag : undefined;
}

/**
 * The PostgreSQL set taken before the schema changes (under the caller's lock), tagged with the revision the
 * database is at; its id, or undefined with --no-backup.
 */
export async function backupFirst(change: SchemaChange, opts: { tag: string; at: string[]; lock?: Lock; command: string; skippedWarnings: string[] }): Promise<string | undefined> {
  if (change.noBackup) {
    for (const w of opts.skippedWarnings) change.ops.sourceContext.out.warn(w);
    return undefined;
  }
  const at = revisionTag(opts.at);
  const report = await runBackup(change.ops, { only: ['postgres'], tags: [opts.tag, ...(at ? [at] : [])], lock: opts.lock, command: opts.command });
  if (!report.ok) throw report.error;
  return report.outcome?.id;
}

/** The SQL is the product of a dry run: raw on stdout, ready for review or psql (in --json, inside the document). */
export function printSql(out: Output, sql: string): void {
  if (!out.json) process.stdout.write(out.redactor.redact(sql.endsWith('\n') ? sql : `${sql}\n`));
}

export async function currentRevisions(change: SchemaChange, runner = change.ops.runner): Promise<string[]> {
  return parseCurrent((await runAlembic(runner, alembicCommand(change.settings, ['current']), 'current', { readOnly: true })).stdout);
}

/**
 * Under the lock, before anything changes: the database must still be where the plan (and the operator's yes) saw
 * it. Another migrate or rollback may have moved it while this one waited for confirmation or for its checks.
 */
export async function refuseIfMoved(change: SchemaChange, planned: string[], script: string): Promise<void> {
  const now = await currentRevisions(change);
  if (now.join() !== planned.join()) {
    throw new RefusedError(`${script}: the database moved from ${planned.join(', ') || 'no revision'} to ${now.join(', ') || 'no revision'} after this run read it (another migrate or rollback ran): nothing was changed; run ${script} again to see the new plan`);
  }
}

/** Where the database is now, for a failure's details: read even after Ctrl-C (the run is stopping anyway). */
export async function whereNow(change: SchemaChange): Promise<string> {
  return currentRevisions(change, change.ops.runner.uninterruptible()).then(
    (now) => `the database is now at ${now.join(', ') || 'no revision'}`,
    () => 'the database revision could not be read after the failure',
  );
}
