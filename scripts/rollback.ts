// rollback: Alembic downgrade (one revision by default, or --to), after a backup set and a confirmation; prints
// the revisions it reverts and the other way back (restoring the pre-migration set). Playbook: docs/rollback.md.
// Example: npx tsx scripts/rollback.ts --dry-run
import { runScript, startIfEntry, type CommandSpec } from '../lib/cli.ts';
import { backupRoot } from '../lib/ops.ts';
import { backupFirst, currentRevisions, openSchemaChange, printSql, refuseIfMoved, revisionTag, whereNow } from '../lib/schema-change.ts';
import { acquireLock } from '../lib/lock.ts';
import { runBackup } from '../lib/backup.ts';
import { confirm } from '../lib/confirm.ts';
import { EXIT, OpsError, UsageError, exitCodeOf } from '../lib/errors.ts';
import {
  AlembicError,
  PRE_MIGRATION_TAG,
  PRE_ROLLBACK_TAG,
  alembicCommand,
  describeRevisions,
  taggedSets,
  readState,
  restoreCommand,
  revertedRevisions,
  rollbackTarget,
  runAlembic,
  sqlArgs,
} from '../lib/alembic.ts';

export const spec: CommandSpec = {
  name: 'rollback',
  summary: 'downgrade the database schema (Alembic) after a backup set; a downgrade can lose data',
  examples: ['npx tsx scripts/rollback.ts --dry-run', 'npx tsx scripts/rollback.ts --yes', 'npx tsx scripts/rollback.ts --to 2e1b3c4d5e02 --yes'],
  mutating: true,
  flags: {
    to: { type: 'string', value: 'REV', description: 'downgrade to this revision (id, unique prefix of 4+ characters, -N steps, or base); default -1' },
    'no-backup': { type: 'boolean', description: 'skip the backup set taken before the downgrade (loudly not recommended)' },
  },
  notes: [
    'Needs --yes, or the current revision typed on a TTY; without either it changes nothing (exit 5).',
    'Exit 5 also when the database is at a revision the migrations do not know.',
    'The other way back: restore the pre-migration backup set (the exact command is printed).',
  ],
};

export function main(argv: string[]): Promise<number> {
  return runScript(spec, argv, async (ctx) => {
    const out = ctx.out;
    const change = openSchemaChange(ctx, 'rollback');
    const { ops, settings: s, noBackup } = change;
    const { loaded, runner } = ops;
    const root = backupRoot(loaded);

    const state = await out.step('read the migration state (alembic history, current)', () => readState(runner, s));
    if (state.current.length === 0) {
      out.ok('nothing to roll back: the database has no Alembic revision');
      out.result({ ok: true, dryRun: ctx.dryRun, from: [], to: [], reverted: [] });
      return EXIT.ok;
    }
    const target = rollbackTarget(state.history, state.current, ctx.values.to as string | undefined);
    const targetName = target ?? 'base';
    const reverted = revertedRevisions(state.history, state.current, target);
    out.info(`database at ${describeRevisions(state.current)} -> ${targetName}: ${reverted.length} revision${reverted.length === 1 ? '' : 's'} to revert`);
    for (const r of reverted) out.plan(`revert ${r.id}: ${r.message}`);
    out.warn('a downgrade can lose data: what it drops (columns, tables) is gone with its contents, and some migrations cannot be reversed faithfully (docs/rollback.md)');
    out.warn('the running app may expect the newer schema: deploy the previous app version right after (docs/rollback.md)');
    // The set taken when the database was at the target revision is the other way there; failing that, the newest.
    const atTarget = revisionTag(target === null ? [] : [target]);
    const preMigrationSets = await taggedSets(root, PRE_MIGRATION_TAG);
    const exact = atTarget ? preMigrationSets.filter((s) => s.manifest.tags.includes(atTarget)).at(-1) : undefined;
    const preMigration = exact ?? preMigrationSets.at(-1);
    const alternative = preMigration ? restoreCommand(preMigration.id, ctx.values.config as string | undefined) : null;
    const revisionOf = (set: (typeof preMigrationSets)[number]) => set.manifest.tags.find((t) => t.startsWith('at-'))?.slice(3);
    if (alternative) {
      const at = revisionOf(preMigration!);
      const where = exact ? `taken at ${targetName}` : at ? `taken at ${at}, not at ${targetName}` : 'the revision it was taken at is not recorded';
      out.info(`alternative: restore the pre-migration backup set ${preMigration!.id} (taken ${preMigration!.manifest.startedAt}; ${where}); writes since then are lost:`);
      out.info(`  ${alternative}`);
      // A newer pre-migration set whose revision is not recorded (the deploy guide's backup-all --tag pre-migration)
      // may be at the target too, with less to lose: the operator decides, knowing both. The first one after the
      // set taken at the target is the likeliest still there; later ones, likelier at later revisions.
      const newer = exact ? preMigrationSets.find((x) => x.id > exact.id && !revisionOf(x)) : undefined;
      if (newer) {
        out.warn(`a newer pre-migration set ${newer.id} (taken ${newer.manifest.startedAt}) does not record its revision: if the database was still at ${targetName} then (check its alembic_version before relying on it), it loses less; restore it instead with: ${restoreCommand(newer.id, ctx.values.config as string | undefined)}`);
      }
    } else {
      out.info(`alternative: no backup set tagged ${PRE_MIGRATION_TAG} under ${root}: restoring is not an option here`);
    }

    const command = `rollback ${argv.join(' ')}`.trim();
    if (ctx.dryRun) {
      if (state.current.length > 1) throw new UsageError(`the database is at ${state.current.length} revisions: Alembic's offline SQL needs one starting revision (the plan above is what a real run does)`);
      const sql = (await runAlembic(runner, alembicCommand(s, sqlArgs('downgrade', state.current[0]!, targetName)), 'downgrade --sql', { readOnly: true })).stdout;
      if (!noBackup) await runBackup(ops, { only: ['postgres'], tags: [PRE_ROLLBACK_TAG], command });
      out.plan(runner.display(alembicCommand(s, ['downgrade', targetName])));
      printSql(out, sql);
      out.ok('dry run: nothing was changed');
      out.result({ ok: true, dryRun: true, from: state.current, to: targetName, reverted: reverted.map((r) => ({ id: r.id, message: r.message })), alternative, sql });
      return EXIT.ok;
    }

    // Nothing is touched (no lock, no backup) before the operator said yes.
    await confirm({
      yes: ctx.yes,
      expect: state.current[0]!,
      question: `downgrade the database from ${describeRevisions(state.current)} to ${targetName}, reverting ${reverted.map((r) => r.id).join(', ')}`,
    });

    const lock = acquireLock(root, command, (m) => out.warn(m));
    let backupId: string | undefined;
    /** The restore commands back to before this run: the set it just took, and the pre-migration set. */
    const wayBack = () => [
      ...(backupId ? [`the backup set taken just before is ${backupId}: ${restoreCommand(backupId, ctx.values.config as string | undefined)}`] : []),
      ...(alternative ? [`the pre-migration set: ${alternative}`] : []),
    ];
    try {
      await refuseIfMoved(change, state.current, 'rollback');
      backupId = await backupFirst(change, {
        tag: PRE_ROLLBACK_TAG,
        at: state.current,
        lock,
        command,
        skippedWarnings: ['!!! --no-backup: NO backup set is taken before this downgrade.', '!!! Whatever the downgrade drops is gone for good unless an older set holds it.'],
      });
      try {
        await out.step(`downgrade ${describeRevisions(state.current)} -> ${targetName}`, () =>
          runAlembic(runner, alembicCommand(s, ['downgrade', targetName]), 'downgrade'),
        );
      } catch (err) {
        throw new OpsError(`rollback: ${(err as Error).message}`, err instanceof AlembicError ? EXIT.failed : exitCodeOf(err), [await whereNow(change), ...wayBack()]);
      }
      const after = await currentRevisions(change);
      const expected = target === null ? [] : [target];
      if (after.join() !== expected.join()) {
        throw new OpsError(`after the downgrade the database is at ${describeRevisions(after)}, expected ${targetName}`, EXIT.failed, wayBack());
      }
      out.ok(`database now at ${targetName}${backupId ? ` (backup set ${backupId} taken before)` : ''}`);
      out.result({ ok: true, from: state.current, to: targetName, reverted: reverted.map((r) => ({ id: r.id, message: r.message })), backup: backupId ?? null, alternative });
      return EXIT.ok;
    } finally {
      lock.release();
    }
  });
}

startIfEntry(import.meta.url, main);
