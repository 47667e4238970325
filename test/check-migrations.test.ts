// check-migrations with real Alembic (Debian's python3-alembic) and a real throwaway PostgreSQL: passes on the
// fixture app, fails naming the cause on each variant, refuses a non-empty database, keeps the password out.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { chmodSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startPgSandbox, type PgSandbox } from '../lib/pg-sandbox.ts';
import { envWithout, fixtureApp, fixtureRevisions, requireAlembicStack, runScriptChild, type Variant } from './helpers/alembic-fixture.ts';

interface Report {
  ok: boolean;
  database: string;
  steps: { step: string; status: string; revision?: string; message: string; details: string[] }[];
}

const skip = requireAlembicStack();

describe('check-migrations (real Alembic, real PostgreSQL)', { skip }, () => {
  let pg: PgSandbox;
  let work: string;
  let n = 0;
  const env = envWithout('DATABASE_URL');

  before(async () => {
    pg = await startPgSandbox({ prefix: 'llc-test-checkmig-' });
    work = mkdtempSync(join(tmpdir(), 'llc-checkmig-'));
  });
  after(() => {
    pg?.destroy();
    if (work) rmSync(work, { recursive: true, force: true });
  });

  /** A fresh empty database of the shared cluster, as a URL with the password in it (as CI would pass it). */
  function freshDb(): { db: string; url: string } {
    const db = `check_${++n}`;
    pg.sql(`CREATE DATABASE ${db};`);
    const u = new URL(pg.url(db));
    u.password = pg.password;
    return { db, url: u.toString() };
  }

  async function check(variant: Variant | undefined, args: string[] = []): Promise<{ code: number | null; report: Report; stderr: string; stdout: string }> {
    const app = fixtureApp(variant, mkdtempSync(join(work, 'app-')));
    const r = await runScriptChild('check-migrations.ts', ['--app-dir', app, '--json', ...args], env);
    assert.ok(!r.stdout.includes(pg.password) && !r.stderr.includes(pg.password), 'the password never appears in output');
    return { code: r.code, report: JSON.parse(r.stdout) as Report, stderr: r.stderr, stdout: r.stdout };
  }

  const step = (report: Report, name: string) => report.steps.find((s) => s.step === name)!;

  test('the good fixture passes every step against a given empty database, and is left at head', async () => {
    const { db, url } = freshDb();
    const { code, report, stderr } = await check(undefined, ['--database-url', url]);
    assert.equal(code, 0, stderr);
    assert.equal(report.ok, true);
    assert.deepEqual(report.steps.map((s) => [s.step, s.status]), [['heads', 'ok'], ['upgrade', 'ok'], ['autogenerate', 'ok'], ['stairway', 'ok']]);
    assert.equal(pg.sql('SELECT version_num FROM alembic_version;', db), fixtureRevisions().at(-1)!.id);
  });

  test('a history Alembic cannot read is a failed heads step in --json (the rest skipped): a syntax error, a down_revision that does not exist', async () => {
    for (const [name, edit, expected] of [
      ['syntax error', (text: string) => text.replace('def upgrade() -> None:', 'def upgrade() -> None:\n    x = (\n'), /SyntaxError: .*\(.*\.py, line \d+\)/],
      ['missing down_revision', (text: string) => text.replace(/^down_revision = .*$/m, 'down_revision = "deadbeef0000"'), /revision deadbeef0000 is not in the migrations, but .* names it as its down_revision/],
    ] as const) {
      const app = fixtureApp(undefined, mkdtempSync(join(work, 'app-')));
      const head = fixtureRevisions(app).at(-1)!.id;
      const file = join(app, 'migrations/versions', readdirSync(join(app, 'migrations/versions')).find((f) => f.startsWith(head))!);
      writeFileSync(file, edit(readFileSync(file, 'utf8')));
      const { url } = freshDb();
      const r = await runScriptChild('check-migrations.ts', ['--app-dir', app, '--json', '--database-url', url], env);
      assert.equal(r.code, 1, `${name}: ${r.stdout}${r.stderr}`);
      const report = JSON.parse(r.stdout) as Report;
      assert.deepEqual(report.steps.map((s) => [s.step, s.status]), [['heads', 'failed'], ['upgrade', 'skipped'], ['autogenerate', 'skipped'], ['stairway', 'skipped']], name);
      assert.match(step(report, 'heads').message, expected, name);
    }
  });

  test('without --database-url it starts and removes its own throwaway cluster', async (t) => {
    // A temp dir of this run's own (readable by the postgres user): other runs on the machine cannot show up in it.
    const tmp = mkdtempSync(join(tmpdir(), 'llc-checkmig-tmp-'));
    chmodSync(tmp, 0o755);
    t.after(() => rmSync(tmp, { recursive: true, force: true }));
    const sandboxes = () => new Set(readdirSync(tmp).filter((f) => f.startsWith('llc-check-migrations-')));
    const before = sandboxes();
    const app = fixtureApp(undefined, mkdtempSync(join(work, 'app-')));
    const r = await runScriptChild('check-migrations.ts', ['--app-dir', app, '--json'], { ...env, TMPDIR: tmp });
    const { code, stderr } = r;
    const report = JSON.parse(r.stdout) as Report;
    assert.equal(code, 0, stderr);
    assert.equal(report.database, 'throwaway');
    assert.deepEqual(report.steps.map((s) => s.status), ['ok', 'ok', 'ok', 'ok']);
    assert.match(stderr, /throwaway cluster 127\.0\.0\.1:\d+/);
    assert.deepEqual([...sandboxes()].filter((d) => !before.has(d)), [], 'the throwaway cluster is removed');
  });

  test('drift: a model column without a migration fails the autogenerate step, naming table and column', async () => {
    const { url } = freshDb();
    const { code, report, stderr } = await check('drift', ['--database-url', url]);
    assert.equal(code, 1);
    const auto = step(report, 'autogenerate');
    assert.equal(auto.status, 'failed');
    assert.equal(auto.details.length, 1);
    assert.match(auto.details[0]!, /column items\.priority: in the models, not created by the migrations \(add_column\)/);
    assert.equal(step(report, 'stairway').status, 'ok', 'drift does not stop the stairway');
    assert.match(stderr, /check-migrations failed: autogenerate/);
  });

  test('two heads: the heads step fails listing both; nothing else runs and the database stays empty', async () => {
    const { db, url } = freshDb();
    const { code, report, stderr } = await check('two-heads', ['--database-url', url]);
    assert.equal(code, 1);
    const heads = step(report, 'heads');
    assert.equal(heads.status, 'failed');
    const good = fixtureRevisions().at(-1)!.id;
    assert.match(heads.message, new RegExp(`2 heads: .*${good}`));
    assert.match(heads.message, /4c3d5e6f7a04/);
    assert.equal(heads.details.length, 2);
    assert.deepEqual(report.steps.slice(1).map((s) => s.status), ['skipped', 'skipped', 'skipped']);
    assert.match(stderr, /heads: 2 heads/);
    assert.equal(pg.sql("SELECT count(*) FROM pg_tables WHERE schemaname = 'public';", db), '0');
  });

  test('failing downgrade: the stairway fails naming the revision whose downgrade breaks', async () => {
    const { url } = freshDb();
    const { code, report, stderr } = await check('bad-downgrade', ['--database-url', url]);
    assert.equal(code, 1);
    const stair = step(report, 'stairway');
    const broken = fixtureRevisions()[1]!.id;
    assert.equal(stair.status, 'failed');
    assert.equal(stair.revision, broken);
    assert.match(stair.message, new RegExp(`downgrade of revision ${broken} failed.*column "notes" of relation "items" does not exist`));
    assert.match(stderr, new RegExp(`check-migrations failed: stairway \\(revision ${broken}\\)`));
    assert.deepEqual(report.steps.slice(0, 3).map((s) => s.status), ['ok', 'ok', 'ok']);
  });

  test('a merged history (two heads joined by alembic merge) passes the stairway, the merge step included', async () => {
    const { url } = freshDb();
    const { code, report, stderr } = await check('merged', ['--database-url', url]);
    assert.equal(code, 0, stderr);
    assert.deepEqual(report.steps.map((s) => s.status), ['ok', 'ok', 'ok', 'ok']);
    assert.match(stderr, /stairway: 5e4f6a7b8c05 up, down to 3d2c4d5e6f03, up/);
  });

  test('a revision without downgrade(): the stairway fails naming that revision (Alembic fails before it logs one)', async () => {
    const { url } = freshDb();
    const app = fixtureApp(undefined, mkdtempSync(join(work, 'app-')));
    const victim = fixtureRevisions()[1]!.id;
    const file = join(app, 'migrations/versions', readdirSync(join(app, 'migrations/versions')).find((f) => f.startsWith(victim))!);
    writeFileSync(file, readFileSync(file, 'utf8').replace(/\ndef downgrade\(\)[^\n]*:\n(?: {4}[^\n]*\n)+/, '\n'));
    const r = await runScriptChild('check-migrations.ts', ['--app-dir', app, '--database-url', url, '--json'], env);
    assert.equal(r.code, 1, r.stderr);
    const stair = (JSON.parse(r.stdout) as { steps: { step: string; revision?: string; message: string }[] }).steps.find((s) => s.step === 'stairway')!;
    assert.equal(stair.revision, victim);
    assert.match(stair.message, /has no attribute 'downgrade'/);
  });

  test('a database that is not empty is refused (exit 5) and left untouched', async () => {
    const { db, url } = freshDb();
    pg.sql('CREATE TABLE keep_me (id int); INSERT INTO keep_me VALUES (42);', db);
    const app = fixtureApp(undefined, mkdtempSync(join(work, 'app-')));
    const r = await runScriptChild('check-migrations.ts', ['--app-dir', app], { ...env, DATABASE_URL: url });
    assert.equal(r.code, 5, r.stderr);
    assert.match(r.stdout + r.stderr, new RegExp(`database ${db} .* is not empty`));
    assert.equal(pg.sql('SELECT count(*) FROM pg_tables WHERE schemaname = \'public\';', db), '1');
    assert.equal(pg.sql('SELECT id FROM keep_me;', db), '42');
  });

  test('bad usage exits 2: no alembic.ini in --app-dir', async () => {
    const r = await runScriptChild('check-migrations.ts', ['--app-dir', work], env);
    assert.equal(r.code, 2);
    assert.match(r.stderr + r.stdout, /no alembic\.ini in/);
    const app = fixtureApp(undefined, mkdtempSync(join(work, 'app-')));
    for (const url of ['postgresql://u:s3cr3t@host:99999/db', 'postgresql://u:s3cr3t@[bad/db']) {
      const u = await runScriptChild('check-migrations.ts', ['--app-dir', app, '--database-url', url], env);
      assert.equal(u.code, 2, u.stdout + u.stderr);
      assert.match(u.stderr + u.stdout, /--database-url is not a valid URL/);
      assert.doesNotMatch(u.stderr + u.stdout, /s3cr3t/);
    }
  });
});
