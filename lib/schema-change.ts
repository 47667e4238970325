// What migrate and rollback share around Alembic: the set-up, the backup taken first, the SQL of a dry run, and
// reading where the database is afterwards.
import type { ScriptContext } from './cli.ts';
import { UsageError } from './errors.ts';
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

/** The PostgreSQL set taken before the schema changes (under the caller's lock); its id, or undefined with --no-backup. */
export async function backupFirst(change: SchemaChange, opts: { tag: string; lock?: Lock; command: string; skippedWarnings: string[] }): Promise<string | undefined> {
  if (change.noBackup) {
    for (const w of opts.skippedWarnings) change.ops.sourceContext.out.warn(w);
    return undefined;
  }
  const report = await runBackup(change.ops, { only: ['postgres'], tags: [opts.tag], lock: opts.lock, command: opts.command });
  if (!report.ok) throw report.error;
  return report.outcome?.id;
}

/** The SQL is the product of a dry run: raw on stdout, ready for review or psql (in --json, inside the document). */
export function printSql(out: Output, sql: string): void {
  if (!out.json) process.stdout.write(out.redactor.redact(sql.endsWith('\n') ? sql : `${sql}\n`));
}

export async function currentRevisions(change: SchemaChange): Promise<string[]> {
  return parseCurrent((await runAlembic(change.ops.runner, alembicCommand(change.settings, ['current']), 'current', { readOnly: true })).stdout);
}
