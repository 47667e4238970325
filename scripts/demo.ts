// demo: the sandbox for newcomers. Starts a throwaway PostgreSQL with sample data, backs it up, verifies the set,
// restores it into a second database, compares row counts, and removes everything. Example: npm run demo
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { runScript, startIfEntry, type CommandSpec } from '../lib/cli.ts';
import { findPgBin, PG_INSTALL_HINT, startPgSandbox, type PgSandbox } from '../lib/pg-sandbox.ts';
import { EXIT, OpsError } from '../lib/errors.ts';
import { main as backupAll } from './backup-all.ts';
import { main as verifyLatest } from './verify-latest.ts';
import { main as restoreAll } from './restore-all.ts';
import { hasTool } from '../lib/tools.ts';

export const spec: CommandSpec = {
  name: 'demo',
  summary: 'round trip on a throwaway PostgreSQL: backup-all, verify-latest --checksums, restore-all into a second database',
  examples: ['npm run demo', 'npx tsx scripts/demo.ts --rows 100000 --keep'],
  mutating: false,
  flags: {
    rows: { type: 'string', value: 'N', description: 'rows of sample documents (default 20000)' },
    keep: { type: 'boolean', description: 'leave the sandbox directory (cluster stopped) for a look around' },
  },
};

const SAMPLE_SQL = (rows: number) => `
CREATE TABLE documents (id bigint PRIMARY KEY, title text NOT NULL, body text NOT NULL, created_at timestamptz NOT NULL DEFAULT now());
CREATE TABLE chunks (id bigserial PRIMARY KEY, document_id bigint NOT NULL REFERENCES documents(id), ordinal int NOT NULL, content text NOT NULL);
CREATE TABLE "Tags & Labels" (name text PRIMARY KEY);
CREATE SCHEMA ingest;
CREATE TABLE ingest.jobs (id serial PRIMARY KEY, state text NOT NULL);
INSERT INTO documents (id, title, body) SELECT g, 'Document ' || g, repeat(md5(g::text), 8) FROM generate_series(1, ${rows}) g;
INSERT INTO chunks (document_id, ordinal, content) SELECT d.id, o, md5(d.id::text || o) FROM documents d, generate_series(1, 3) o;
INSERT INTO "Tags & Labels" VALUES ('alpha'), ('beta'), ('ünïcode');
INSERT INTO ingest.jobs (state) SELECT 'done' FROM generate_series(1, 42);
CREATE ROLE llc_app LOGIN;
GRANT SELECT ON ALL TABLES IN SCHEMA public TO llc_app;
`;

export function main(argv: string[]): Promise<number> {
  return runScript(spec, argv, async (ctx) => {
    const out = ctx.out;
    if (ctx.values.json) throw new OpsError('demo prints a walk-through; it has no --json (the scripts it runs do)', EXIT.usage);
    const rows = Number(ctx.values.rows ?? 20000);
    if (!Number.isInteger(rows) || rows < 1) throw new OpsError('--rows takes a positive whole number', EXIT.usage);
    if (!findPgBin()) throw new OpsError(PG_INSTALL_HINT);
    if (!hasTool('zstd')) throw new OpsError('zstd not found: install it with `sudo apt-get install zstd`');
    const work = mkdtempSync(join(tmpdir(), 'llc-demo-'));
    let pg: PgSandbox | undefined;
    // A second Ctrl-C exits at once, skipping the finally below: the throwaway cluster and files still go.
    const emergency = () => {
      if (ctx.values.keep) return;
      pg?.destroy();
      rmSync(work, { recursive: true, force: true });
    };
    process.once('exit', emergency);
    try {
      pg = await out.step('start a throwaway PostgreSQL', () => startPgSandbox({ prefix: 'llc-demo-pg-' }), (p) => ({ note: `PostgreSQL ${p.version} on 127.0.0.1:${p.port}` }));
      const sandbox = pg;
      sandbox.sql('CREATE DATABASE llc_demo;');
      await out.step(`load sample data (${rows} documents)`, () => sandbox.sqlAsync(SAMPLE_SQL(rows), 'llc_demo', ctx.signal));
      const config = join(work, 'ops.config.yaml');
      writeFileSync(join(work, '.env'), `DEMO_PGPASSWORD=${sandbox.password}\n`, { mode: 0o600 });
      writeFileSync(
        config,
        [
          '# Written by npm run demo. The password comes from .env beside this file.',
          'backup:',
          '  root: ./backups',
          '  maxAge: 1h',
          'sources:',
          '  postgres:',
          '    via: local',
          `    url: ${sandbox.url('postgres')}`,
          '    password: ${DEMO_PGPASSWORD}',
          '    databases: [llc_demo]',
          '    restoreInto: { llc_demo: llc_demo_restored }',
          'monitoring:',
          '  textfileDir: ./textfile',
          '',
        ].join('\n'),
      );
      out.info(`config: ${config}`);
      const common = ['--config', config];
      for (const [name, run, args] of [
        ['backup-all', backupAll, []],
        ['verify-latest --checksums', verifyLatest, ['--checksums']],
        ['restore-all --yes', restoreAll, ['--yes']],
      ] as const) {
        out.info(`--- ${name}`);
        const code = await run([...common, ...args]);
        if (code !== 0) throw new OpsError(`${name} exited ${code}`);
      }
      const count = (db: string) =>
        sandbox.sql(`SELECT string_agg(format('%s=%s', t, n), ' ' ORDER BY t) FROM (SELECT 'documents' t, count(*) n FROM documents UNION ALL SELECT 'chunks', count(*) FROM chunks UNION ALL SELECT 'ingest.jobs', count(*) FROM ingest.jobs UNION ALL SELECT 'Tags & Labels', count(*) FROM "Tags & Labels") s;`, db);
      const before = count('llc_demo');
      const after = count('llc_demo_restored');
      out.info(`--- row counts\n  original: ${before}\n  restored: ${after}`);
      if (before !== after) throw new OpsError('restored row counts differ from the original', EXIT.verify);
      out.ok('round trip complete: the restored database has the same row counts');
      out.result({ ok: true, counts: before });
      return EXIT.ok;
    } finally {
      process.off('exit', emergency);
      pg?.stop();
      if (ctx.values.keep) out.info(`kept ${work} and ${pg?.dir ?? ''}`);
      else {
        pg?.destroy();
        rmSync(work, { recursive: true, force: true });
      }
    }
  });
}

startIfEntry(import.meta.url, main);
