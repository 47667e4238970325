// migrate and rollback end to end with real Alembic and a real throwaway PostgreSQL (via: local configs in temp
// dirs, scripts run as child processes with stdin not a TTY): backups first, dry runs change nothing, rollback
// needs --yes, unknown revisions are refused.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startPgSandbox, type PgSandbox } from '../lib/pg-sandbox.ts';
import { fixtureApp, fixtureRevisions, requireAlembicStack, runScriptChild } from './helpers/alembic-fixture.ts';

const skip = requireAlembicStack(['pg_dump', 'zstd']);
const [R1, R2, R3] = fixtureRevisions().map((r) => r.id) as [string, string, string];

interface Manifest {
  id: string;
  tags: string[];
  sources: { postgres?: { counts: Record<string, Record<string, number>> } };
}

describe('migrate and rollback (real Alembic, real PostgreSQL)', { skip }, () => {
  let pg: PgSandbox;
  let work: string;
  let app: string;
  let n = 0;

  before(async () => {
    pg = await startPgSandbox({ prefix: 'llc-test-migrate-' });
    work = mkdtempSync(join(tmpdir(), 'llc-migrate-'));
    app = fixtureApp(undefined, work);
  });
  after(() => {
    pg?.destroy();
    if (work) rmSync(work, { recursive: true, force: true });
  });

  /** A database of its own and a config dir (ops.config.yaml + .env holding the password) for one test. */
  function setup(appDir = app): { db: string; config: string; backups: string } {
    const db = `app_${++n}`;
    pg.sql(`CREATE DATABASE ${db};`);
    const dir = mkdtempSync(join(work, 'cfg-'));
    writeFileSync(join(dir, '.env'), `APP_DB_PASSWORD=${pg.password}\n`, { mode: 0o600 });
    writeFileSync(
      join(dir, 'ops.config.yaml'),
      [
        'backup:',
        '  root: ./backups',
        'sources:',
        '  postgres:',
        '    via: local',
        `    url: postgresql://${pg.user}@127.0.0.1:${pg.port}/${db}`,
        '    password: ${APP_DB_PASSWORD}',
        `    databases: [${db}]`,
        '    globals: false',
        'migrations:',
        '  via: local',
        `  appDir: ${appDir}`,
        `  databaseUrl: postgresql://${pg.user}:\${APP_DB_PASSWORD}@127.0.0.1:${pg.port}/${db}`,
        '',
      ].join('\n'),
    );
    return { db, config: join(dir, 'ops.config.yaml'), backups: join(dir, 'backups') };
  }

  const version = (db: string) =>
    pg.sql("SELECT to_regclass('public.alembic_version') IS NOT NULL;", db) === 't'
      ? pg.sql("SELECT coalesce(string_agg(version_num, ','), '') FROM alembic_version;", db)
      : '(no table)';
  const sets = (root: string): Manifest[] => {
    let ids: string[] = [];
    try {
      ids = readdirSync(root).filter((d) => /^\d{8}T\d{6}Z$/.test(d)).sort();
    } catch {
      return [];
    }
    return ids.map((id) => JSON.parse(readFileSync(join(root, id, 'manifest.json'), 'utf8')) as Manifest);
  };
  async function run(script: string, args: string[]) {
    const r = await runScriptChild(script, args);
    assert.ok(!(r.stdout + r.stderr).includes(pg.password), 'the password never appears in output');
    return r;
  }

  test('migrate on an empty database reaches head after recording a pre-migration backup set', async () => {
    const { db, config, backups } = setup();
    const r = await run('migrate.ts', ['--config', config, '--json']);
    assert.equal(r.code, 0, r.stderr);
    const doc = JSON.parse(r.stdout) as { to: string; applied: { id: string }[]; backup: string };
    assert.equal(doc.to, R3);
    assert.deepEqual(doc.applied.map((a) => a.id), [R1, R2, R3]);
    assert.equal(version(db), R3);
    const taken = sets(backups);
    assert.equal(taken.length, 1);
    assert.ok(taken[0]!.tags.includes('pre-migration'));
    assert.equal(taken[0]!.id, doc.backup);
    assert.match(r.stderr, new RegExp(`apply ${R1}: create items`));
  });

  test('--dry-run prints the upgrade SQL and changes nothing (revision, tables, backups)', async () => {
    const { db, config, backups } = setup();
    // Empty database: not even alembic_version may appear.
    const empty = await run('migrate.ts', ['--config', config, '--dry-run']);
    assert.equal(empty.code, 0, empty.stderr);
    assert.match(empty.stdout, /CREATE TABLE items/);
    assert.equal(version(db), '(no table)');
    // A database at revision 2: the SQL is only what is pending.
    assert.equal((await run('migrate.ts', ['--config', config, '--to', R2, '--no-backup'])).code, 0);
    assert.equal(version(db), R2);
    const r = await run('migrate.ts', ['--config', config, '--dry-run']);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /CREATE TABLE tags/);
    assert.match(r.stdout, /CREATE INDEX ix_tags_label ON tags \(label\)/);
    assert.doesNotMatch(r.stdout, /CREATE TABLE items/);
    assert.match(r.stdout, new RegExp(`UPDATE alembic_version SET version_num='${R3}'`));
    // The pre-migration backup is planned, not taken: no line may say it was done.
    assert.match(r.stdout, /plan  postgres: dump \S+ \(dry run: not run\)/);
    assert.doesNotMatch(r.stdout, /ok +postgres: dump/);
    assert.equal(version(db), R2);
    assert.equal(pg.sql("SELECT count(*) FROM pg_tables WHERE tablename = 'tags';", db), '0');
    assert.deepEqual(sets(backups), []);
  });

  /**
   * The config of `setup` with Alembic run through a wrapper that, on its second `current`, first has "another run"
   * move the database (`alembic <move...>`): what a migrate or rollback started elsewhere does while this one waits
   * for its confirmation or its checks.
   */
  function movedMeanwhile(config: string, move: string[]): void {
    const dir = join(config, '..');
    const wrapper = join(dir, 'alembic-moved-meanwhile.sh');
    writeFileSync(
      wrapper,
      `#!/bin/sh\ncase " $* " in *" current "*) if [ -e "${dir}/seen" ]; then /usr/bin/python3 -m alembic ${move.join(' ')} >/dev/null 2>&1; else touch "${dir}/seen"; fi ;; esac\nexec /usr/bin/python3 -m alembic "$@"\n`,
      { mode: 0o755 },
    );
    writeFileSync(config, `${readFileSync(config, 'utf8')}  command: [${JSON.stringify(wrapper)}]\n`);
  }

  test('the database moved by another run after this one read it: migrate and rollback refuse (exit 5), take no backup, change nothing', async () => {
    const a = setup();
    assert.equal((await run('migrate.ts', ['--config', a.config, '--to', R2, '--no-backup'])).code, 0);
    movedMeanwhile(a.config, ['upgrade', 'head']);
    const m = await run('migrate.ts', ['--config', a.config]);
    assert.equal(m.code, 5, m.stdout + m.stderr);
    assert.match(m.stdout + m.stderr, new RegExp(`migrate: the database moved from ${R2} to ${R3} after this run read it`));
    assert.equal(version(a.db), R3, 'what the other run did, nothing more');
    assert.deepEqual(sets(a.backups), [], 'no pre-migration set of a state the plan did not see');

    const b = setup();
    assert.equal((await run('migrate.ts', ['--config', b.config, '--no-backup'])).code, 0);
    movedMeanwhile(b.config, ['downgrade', '-1']);
    const r = await run('rollback.ts', ['--config', b.config, '--yes']);
    assert.equal(r.code, 5, r.stdout + r.stderr);
    assert.match(r.stdout + r.stderr, new RegExp(`rollback: the database moved from ${R3} to ${R2} after this run read it`));
    assert.equal(version(b.db), R2, 'the rollback did not revert a revision nobody confirmed');
    assert.deepEqual(sets(b.backups), []);
  });

  test('pre-migration sets record the revision they were taken at; rollback offers the one taken at its target', async () => {
    const { config, backups } = setup();
    for (const to of [R1, R2, R3]) assert.equal((await run('migrate.ts', ['--config', config, '--to', to])).code, 0);
    const taken = sets(backups);
    assert.deepEqual(taken.map((m) => m.tags.find((t) => t.startsWith('at-'))), ['at-base', `at-${R1}`, `at-${R2}`]);
    const r = await run('rollback.ts', ['--config', config, '--to', R1, '--dry-run']);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout + r.stderr, new RegExp(`alternative: restore the pre-migration backup set ${taken[1]!.id} \\(taken [^;]+; taken at ${R1}\\)`));
    const down = await run('rollback.ts', ['--config', config, '--to', '-2', '--dry-run']);
    assert.equal(down.code, 0, down.stderr);
    assert.match(down.stdout + down.stderr, new RegExp(`-> ${R1}: 2 revisions to revert`));
  });

  test('rollback without --yes and without a TTY exits 5 and changes nothing', async () => {
    const { db, config, backups } = setup();
    assert.equal((await run('migrate.ts', ['--config', config])).code, 0);
    const before = sets(backups).length;
    const r = await run('rollback.ts', ['--config', config]);
    assert.equal(r.code, 5, r.stderr);
    assert.match(r.stdout + r.stderr, /pass --yes/);
    assert.equal(version(db), R3);
    assert.equal(pg.sql("SELECT count(*) FROM pg_tables WHERE tablename = 'tags';", db), '1');
    assert.equal(sets(backups).length, before, 'no backup is taken before the confirmation');
  });

  test('rollback --yes takes a backup, then downgrades exactly one revision; it names the pre-migration restore', async () => {
    const { db, config, backups } = setup();
    assert.equal((await run('migrate.ts', ['--config', config])).code, 0);
    pg.sql("INSERT INTO items (name) VALUES ('a'); INSERT INTO tags (item_id, label) SELECT id, 'x' FROM items;", db);
    const preMigration = sets(backups)[0]!;
    const r = await run('rollback.ts', ['--config', config, '--yes']);
    assert.equal(r.code, 0, r.stderr);
    assert.equal(version(db), R2);
    assert.equal(pg.sql("SELECT count(*) FROM pg_tables WHERE tablename = 'tags';", db), '0');
    const out = r.stdout + r.stderr;
    assert.match(out, new RegExp(`revert ${R3}: create tags`));
    assert.match(out, /a downgrade can lose data/);
    assert.ok(out.includes(`npx tsx scripts/restore-all.ts --from ${preMigration.id} --only postgres --force --yes`));
    const all = sets(backups);
    assert.equal(all.length, 2);
    const taken = all[1]!;
    assert.ok(taken.tags.includes('pre-rollback'));
    // Taken before the downgrade: it still holds the tags table the downgrade dropped, with its row.
    assert.equal(taken.sources.postgres!.counts[db]!['public.tags'], 1);
  });

  test('rollback --dry-run prints the downgrade SQL and changes nothing', async () => {
    const { db, config, backups } = setup();
    assert.equal((await run('migrate.ts', ['--config', config, '--no-backup'])).code, 0);
    const r = await run('rollback.ts', ['--config', config, '--to', R1, '--dry-run']);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /DROP TABLE tags/);
    assert.match(r.stdout, /ALTER TABLE items DROP COLUMN note/);
    assert.equal(version(db), R3);
    assert.deepEqual(sets(backups), []);
  });

  test('a database at a revision the migrations do not know is refused (exit 5) by rollback and migrate', async () => {
    const { db, config, backups } = setup();
    assert.equal((await run('migrate.ts', ['--config', config, '--no-backup'])).code, 0);
    pg.sql("UPDATE alembic_version SET version_num = 'f00dfeedbeef';", db);
    for (const script of ['rollback.ts', 'migrate.ts']) {
      const r = await run(script, ['--config', config, '--yes']);
      assert.equal(r.code, 5, `${script}: ${r.stderr}`);
      assert.match(r.stdout + r.stderr, /revision f00dfeedbeef, which the migrations do not know/);
    }
    assert.equal(version(db), 'f00dfeedbeef');
    assert.equal(pg.sql("SELECT count(*) FROM pg_tables WHERE tablename = 'tags';", db), '1');
    assert.deepEqual(sets(backups), []);
  });
  test('branches: a rollback that would leave another branch applied is refused (exit 5); the fork below both works; the plan is what Alembic does', async () => {
    const merged = fixtureApp('merged', work);
    const [MERGE, BRANCH] = ['5e4f6a7b8c05', '4e5f6a7b8c09'];
    const { db, config } = setup(merged);
    assert.equal((await run('migrate.ts', ['--config', config, '--no-backup'])).code, 0);
    assert.equal(version(db), MERGE);
    // Down to one parent of the merge: Alembic would unmerge and leave the other parent applied.
    const split = await run('rollback.ts', ['--config', config, '--to', R3, '--yes', '--no-backup']);
    assert.equal(split.code, 5, split.stdout + split.stderr);
    assert.match(split.stdout + split.stderr, new RegExp(`leave ${BRANCH} applied: the database would be at ${R3}, ${BRANCH}`));
    assert.equal(version(db), MERGE, 'nothing changed');
    // Down to where the branches fork: every revision the plan names is reverted, and only those.
    const fork = await run('rollback.ts', ['--config', config, '--to', R2, '--yes', '--no-backup']);
    assert.equal(fork.code, 0, fork.stdout + fork.stderr);
    assert.match(fork.stdout + fork.stderr, new RegExp(`-> ${R2}: 3 revisions to revert`));
    assert.equal(version(db), R2);
    // Zero steps, and a migrate "up" to a revision below the current one, are usage errors.
    const zero = await run('rollback.ts', ['--config', config, '--to', '-0', '--yes']);
    assert.equal(zero.code, 2, zero.stdout + zero.stderr);
    const down = await run('migrate.ts', ['--config', config, '--to', R1]);
    assert.equal(down.code, 2, down.stdout + down.stderr);
    assert.match(down.stdout + down.stderr, new RegExp(`revision ${R1} is below the current revision ${R2}: going down is rollback\\.ts --to ${R1}`));
    assert.equal(version(db), R2);
  });

  test('a database on both branches of a pending merge: --dry-run shows the plan and says why no SQL (exit 0); migrate applies the merge', async () => {
    const merged = fixtureApp('merged', work);
    const [MERGE, BRANCH] = ['5e4f6a7b8c05', '4e5f6a7b8c09'];
    const { db, config, backups } = setup(merged);
    assert.equal((await run('migrate.ts', ['--config', config, '--no-backup'])).code, 0);
    // The merge revision changes no schema: a database that had both branches applied before it existed is here.
    pg.sql(`DELETE FROM alembic_version; INSERT INTO alembic_version VALUES ('${R3}'), ('${BRANCH}');`, db);
    const dry = await run('migrate.ts', ['--config', config, '--dry-run']);
    assert.equal(dry.code, 0, dry.stdout + dry.stderr);
    assert.match(dry.stdout, new RegExp(`apply ${MERGE}`));
    assert.match(dry.stdout + dry.stderr, /the SQL is not shown: the database is at 2 revisions .*Alembic's offline SQL starts from one/);
    assert.deepEqual(sets(backups), [], 'a dry run takes no backup');
    const real = await run('migrate.ts', ['--config', config, '--no-backup']);
    assert.equal(real.code, 0, real.stdout + real.stderr);
    assert.equal(version(db), MERGE);
  });

  test('two heads: migrate refuses (exit 5) even with --to naming one of them, and takes no backup', async () => {
    const twoHeads = fixtureApp('two-heads', work);
    const { db, config, backups } = setup(twoHeads);
    for (const args of [[], ['--to', '4c3d5e6f7a04']]) {
      const r = await run('migrate.ts', ['--config', config, ...args]);
      assert.equal(r.code, 5, r.stdout + r.stderr);
      assert.match(r.stdout + r.stderr, /the migrations have 2 heads: 3d2c4d5e6f03, 4c3d5e6f7a04/);
    }
    assert.equal(version(db), '(no table)');
    assert.deepEqual(sets(backups), []);
  });

  test("rollback names a newer pre-migration set that records no revision (the deploy guide's backup-all --tag pre-migration)", async () => {
    const { config } = setup();
    assert.equal((await run('migrate.ts', ['--config', config, '--to', R2])).code, 0);
    // A migrate from R2 records its set at R2; rolled back, the database is at R2 again when the deploy flow's
    // backup (no revision recorded) is taken before the next migration.
    assert.equal((await run('migrate.ts', ['--config', config])).code, 0);
    assert.equal((await run('rollback.ts', ['--config', config, '--yes', '--no-backup'])).code, 0);
    await new Promise((r) => setTimeout(r, 1100)); // set ids are seconds
    const deploy = await run('backup-all.ts', ['--config', config, '--tag', 'pre-migration', '--json']);
    assert.equal(deploy.code, 0, deploy.stderr);
    const deployId = (JSON.parse(deploy.stdout) as { id: string }).id;
    assert.equal((await run('migrate.ts', ['--config', config, '--no-backup'])).code, 0);
    const r = await run('rollback.ts', ['--config', config, '--dry-run']);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout + r.stderr, new RegExp(`alternative: restore the pre-migration backup set \\d{8}T\\d{6}Z \\(taken [^;]+; taken at ${R2}\\)`));
    assert.match(r.stdout + r.stderr, new RegExp(`a newer pre-migration set ${deployId} \\(taken [^)]+\\) does not record its revision: if the database was still at ${R2} then \\(check its alembic_version before relying on it\\), it loses less; restore it instead with: npx tsx scripts/restore-all\\.ts --from ${deployId} --only postgres --force --yes`));
  });
});
