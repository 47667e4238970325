// migrate: shows current -> head and the pending Alembic revisions, takes a pre-migration PostgreSQL backup set,
// runs the upgrade (the compose `migrations` one-shot or a local command) and reports the new revision.
// Example: npx tsx scripts/migrate.ts --dry-run
import { runScript, startIfEntry, type CommandSpec } from '../lib/cli.ts';
import { backupRoot } from '../lib/ops.ts';
import { backupFirst, currentRevisions, openSchemaChange, printSql, refuseIfMoved, whereNow } from '../lib/schema-change.ts';
import { acquireLock } from '../lib/lock.ts';
import { runBackup } from '../lib/backup.ts';
import { EXIT, OpsError, UsageError, exitCodeOf } from '../lib/errors.ts';
import {
  AlembicError,
  PRE_MIGRATION_TAG,
  alembicCommand,
  ancestorsOrSelf,
  pendingRevisions,
  readState,
  resolveRevision,
  restoreCommand,
  runAlembic,
  sqlArgs,
  upgradeCommand,
  describeRevisions,
} from '../lib/alembic.ts';

export const spec: CommandSpec = {
  name: 'migrate',
  summary: 'apply pending Alembic migrations after a pre-migration PostgreSQL backup set',
  examples: ['npx tsx scripts/migrate.ts --dry-run', 'npx tsx scripts/migrate.ts', 'npx tsx scripts/migrate.ts --to 3d2c4d5e6f03 --json'],
  mutating: true,
  flags: {
    to: { type: 'string', value: 'REV', description: 'upgrade to this revision (id or unique prefix of 4+ characters) instead of head' },
    'no-backup': { type: 'boolean', description: 'skip the pre-migration backup set (then a failed migration can only be fixed forward)' },
  },
  notes: [
    '--dry-run prints the SQL Alembic would run (upgrade --sql, offline) and changes nothing.',
    'Exit 5 when the database is at a revision the migrations do not know, or the migrations have several heads.',
  ],
};

export function main(argv: string[]): Promise<number> {
  return runScript(spec, argv, async (ctx) => {
    const out = ctx.out;
    const change = openSchemaChange(ctx, 'migrate');
    const { ops, settings: s, noBackup } = change;
    const { loaded, runner } = ops;

    const state = await out.step('read the migration state (alembic history, current)', () => readState(runner, s));
    // Several heads are refused whatever --to names: deploying one branch leaves the database on two revisions.
    if (state.heads.length > 1) resolveRevision(state.history, 'head');
    const to = (ctx.values.to as string | undefined) ?? 'head';
    const target = resolveRevision(state.history, to);
    if (target === null) throw new UsageError('--to base goes down, not up: use rollback.ts');
    // A target the database is already past is a way down, not "nothing to apply".
    if (!state.current.includes(target) && state.current.some((c) => ancestorsOrSelf(state.history, c).has(target))) {
      throw new UsageError(`--to ${to}: revision ${target} is below the current revision ${describeRevisions(state.current)}: going down is rollback.ts --to ${target}`);
    }
    const pending = pendingRevisions(state.history, state.current, target);
    out.info(`database at ${describeRevisions(state.current)} -> target ${target}: ${pending.length} pending`);
    for (const r of pending) out.plan(`apply ${r.id}: ${r.message}`);
    if (pending.length === 0) {
      out.ok(`nothing to apply: the database is at ${describeRevisions(state.current)}`);
      out.result({ ok: true, dryRun: ctx.dryRun, from: state.current, to: target, applied: [] });
      return EXIT.ok;
    }

    const command = `migrate ${argv.join(' ')}`.trim();
    if (ctx.dryRun) {
      // Alembic's offline SQL starts from one revision: a database on both branches of a merge has two. The plan
      // (the revisions, the backup, the command) still stands; only the SQL cannot be shown.
      const sql =
        state.current.length > 1
          ? null
          : (await runAlembic(runner, alembicCommand(s, sqlArgs('upgrade', state.current[0] ?? null, target)), 'upgrade --sql', { readOnly: true })).stdout;
      if (!noBackup) await runBackup(ops, { only: ['postgres'], tags: [PRE_MIGRATION_TAG], command });
      out.plan(runner.display(upgradeCommand(s, target)));
      if (sql === null) out.warn(`the SQL is not shown: the database is at ${state.current.length} revisions (${describeRevisions(state.current)}), and Alembic's offline SQL starts from one`);
      else printSql(out, sql);
      out.ok('dry run: nothing was changed');
      out.result({ ok: true, dryRun: true, from: state.current, to: target, pending: pending.map((r) => ({ id: r.id, message: r.message })), sql });
      return EXIT.ok;
    }

    const lock = acquireLock(backupRoot(loaded), command, (m) => out.warn(m));
    let backupId: string | undefined;
    try {
      await refuseIfMoved(change, state.current, 'migrate');
      backupId = await backupFirst(change, {
        tag: PRE_MIGRATION_TAG,
        at: state.current,
        lock,
        command,
        skippedWarnings: ['--no-backup: no pre-migration backup set is taken; if this migration goes wrong, only fixing forward or an older set can help'],
      });
      try {
        await out.step(`upgrade ${describeRevisions(state.current)} -> ${target} (${pending.length} revision${pending.length > 1 ? 's' : ''})`, () =>
          runAlembic(runner, upgradeCommand(s, target), 'upgrade'),
        );
      } catch (err) {
        // Where did it stop? With transactional DDL Alembic rolls the failed run back; say what the database holds now.
        const details = [
          await whereNow(change),
          ...(backupId ? [`the pre-migration backup set is ${backupId}; to go back to it: ${restoreCommand(backupId, ctx.values.config as string | undefined)}`] : []),
          'or fix the migration and run migrate again (docs/deployment_guide.md, "When a migration fails")',
        ];
        // Interrupted too (Ctrl-C, SIGTERM): the operator needs the same facts to decide.
        throw new OpsError(`migrate: ${(err as Error).message}`, err instanceof AlembicError ? EXIT.failed : exitCodeOf(err), details);
      }
      const after = await currentRevisions(change);
      if (after.length !== 1 || after[0] !== target) {
        throw new OpsError(`after the upgrade the database is at ${describeRevisions(after)}, expected ${target}`);
      }
      out.ok(`database now at ${target}${backupId ? ` (pre-migration backup set ${backupId})` : ''}`);
      out.result({ ok: true, from: state.current, to: target, applied: pending.map((r) => ({ id: r.id, message: r.message })), backup: backupId ?? null });
      return EXIT.ok;
    } finally {
      lock.release();
    }
  });
}

startIfEntry(import.meta.url, main);
