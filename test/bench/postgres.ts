// PostgreSQL: backup-all against raw `pg_dump -Fc`, and restore-all (checks included) against raw `pg_restore` of
// that raw archive, on the same generated database in the same run.
import { mkdtempSync, rmSync, statSync, writeFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { tmpdir } from 'node:os';
import { startPgSandbox } from '../../lib/pg-sandbox.ts';
import { pgProgram } from '../../lib/tools.ts';
import { CRON_NODE_OPTIONS, ROOT, fmt, median, must, timed, timedScript, inAlternatingOrder, settled } from './util.ts';

export interface PgBenchResult {
  dbBytes: number;
  rounds: number;
  rawDump: number[];
  ourBackup: number[];
  rawDumpBytes: number;
  ourDumpBytes: number;
  rawRestore: number[];
  ourRestore: number[];
  /** restore-all --help: Node and module start-up, paid by every run before any work. */
  ourStartup: number[];
  /** `npx tsx scripts/restore-all.ts --help`, as the runbook and cron start it: npm's launcher on top of the start-up. */
  launcher: number[];
  backupRssMiB: number;
  restoreRssMiB: number;
  pgVersion: number;
}

export async function benchPostgres(opts: { rows: number; rounds: number; log: (s: string) => void }): Promise<PgBenchResult> {
  const pg = await startPgSandbox({ prefix: 'llc-bench-pg-' });
  const work = mkdtempSync(join(tmpdir(), 'llc-bench-'));
  try {
    opts.log(`generating ${opts.rows} documents...`);
    pg.sql('CREATE DATABASE bench;');
    pg.sql(
      `CREATE TABLE docs (id bigint PRIMARY KEY, title text, body text, score float8, created timestamptz);
       INSERT INTO docs SELECT g, 'title ' || g, repeat(md5(g::text), 5) || ' ' || md5((g * 7)::text), random(), now() - make_interval(secs => g) FROM generate_series(1, ${opts.rows}) g;
       CREATE INDEX ON docs (score);
       CREATE TABLE tags (doc_id bigint, tag text);
       INSERT INTO tags SELECT g % ${opts.rows}, 'tag' || (g % 500) FROM generate_series(1, ${Math.round(opts.rows * 1.5)}) g;
       VACUUM ANALYZE;`,
      'bench',
    );
    const dbBytes = Number(pg.sql("SELECT pg_database_size('bench');"));
    opts.log(`database: ${(dbBytes / 2 ** 20).toFixed(0)} MiB`);
    // The raw tools run as the same programs our scripts run: Debian's pg_wrapper is skipped for both (lib/tools.ts).
    const env: Record<string, string> = { PGHOST: '127.0.0.1', PGPORT: String(pg.port), PGUSER: pg.user, PGPASSWORD: pg.password };
    writeFileSync(join(work, '.env'), `BENCH_PGPASSWORD=${pg.password}\n`, { mode: 0o600 });
    const config = join(work, 'ops.config.yaml');
    writeFileSync(
      config,
      `backup:\n  root: ${join(work, 'backups')}\nsources:\n  postgres:\n    via: local\n    url: ${pg.url()}\n    password: \${BENCH_PGPASSWORD}\n    databases: [bench]\n    globals: false\n    restoreInto: { bench: bench_ours }\n`,
    );
    const raw = join(work, 'raw.dump');
    const r: PgBenchResult = { dbBytes, rounds: opts.rounds, rawDump: [], ourBackup: [], rawDumpBytes: 0, ourDumpBytes: 0, rawRestore: [], ourRestore: [], ourStartup: [], launcher: [], backupRssMiB: 0, restoreRssMiB: 0, pgVersion: pg.version };
    for (let i = 0; i < opts.rounds; i++) {
      const rawRun = async () => r.rawDump.push(must(await timed([pgProgram('pg_dump', env), '-Fc', '-d', 'bench', '-f', raw], { env }), 'pg_dump').seconds);
      const ourRun = async () => {
        const t = await timedScript('backup-all', ['--config', config]);
        r.ourBackup.push(t.seconds);
        r.backupRssMiB = Math.max(r.backupRssMiB, t.rssMiB);
      };
      await inAlternatingOrder(i, rawRun, ourRun, async () => {
        pg.sql('CHECKPOINT;');
        await settled();
      });
      opts.log(`backup round ${i + 1}: raw ${fmt(r.rawDump.at(-1)!)} s, ours ${fmt(r.ourBackup.at(-1)!)} s`);
    }
    r.rawDumpBytes = statSync(raw).size;
    const sets = readdirSync(join(work, 'backups')).filter((n) => /^\d{8}T\d{6}Z$/.test(n)).sort();
    const newest = join(work, 'backups', sets.at(-1)!, 'postgres');
    r.ourDumpBytes = readdirSync(newest).reduce((a, f) => a + statSync(join(newest, f)).size, 0);
    for (let i = 0; i < opts.rounds; i++) {
      const rawRun = async () => {
        const t0 = performance.now();
        pg.sql('CREATE DATABASE bench_raw;');
        must(await timed([pgProgram('pg_restore', env), '-d', 'bench_raw', raw], { env }), 'pg_restore');
        r.rawRestore.push((performance.now() - t0) / 1000);
      };
      const ourRun = async () => {
        const t = await timedScript('restore-all', ['--config', config, '--yes']);
        r.ourRestore.push(t.seconds);
        r.restoreRssMiB = Math.max(r.restoreRssMiB, t.rssMiB);
      };
      // Each restore starts on an idle server: the other side's restored database (and its autovacuum) gone.
      await inAlternatingOrder(i, rawRun, ourRun, async () => {
        pg.sql('DROP DATABASE IF EXISTS bench_raw; DROP DATABASE IF EXISTS bench_ours; CHECKPOINT;');
        await settled();
      });
      r.ourStartup.push((await timedScript('restore-all', ['--help'])).seconds);
      r.launcher.push(must(await timed(['npx', 'tsx', join(ROOT, 'scripts', 'restore-all.ts'), '--help']), 'npx tsx restore-all --help').seconds);
      opts.log(`restore round ${i + 1}: raw ${fmt(r.rawRestore.at(-1)!)} s, ours ${fmt(r.ourRestore.at(-1)!)} s, start-up ${fmt(r.ourStartup.at(-1)!)} s`);
    }
    return r;
  } finally {
    pg.destroy();
    rmSync(work, { recursive: true, force: true });
  }
}

export function postgresReport(r: PgBenchResult): string {
  const backup = median(r.ourBackup) / median(r.rawDump);
  const size = r.ourDumpBytes / r.rawDumpBytes;
  const restore = median(r.ourRestore) / median(r.rawRestore);
  const mib = (b: number) => (b / 2 ** 20).toFixed(1);
  return [
    `## PostgreSQL (${mib(r.dbBytes)} MiB database, PostgreSQL ${r.pgVersion}, median of ${r.rounds} rounds)`,
    '',
    '| measure | ours | raw tool | ratio | target |',
    '|---|---|---|---|---|',
    `| backup time: backup-all (dump, row counts, full read, sha256, publish) vs \`pg_dump -Fc\` | ${fmt(median(r.ourBackup))} s | ${fmt(median(r.rawDump))} s | **${fmt(backup)}** | ≤ 0.6 |`,
    `| backup size | ${mib(r.ourDumpBytes)} MiB | ${mib(r.rawDumpBytes)} MiB | **${fmt(size)}** | ≤ 1.1 |`,
    `| restore time: restore-all (sha256, full read, restore, row counts checked) vs \`pg_restore\` of the raw archive | ${fmt(median(r.ourRestore))} s | ${fmt(median(r.rawRestore))} s | **${fmt(restore)}** | ≤ 1.1 |`,
    `| of which Node start-up (\`restore-all --help\`) vs the same \`pg_restore\` | ${fmt(median(r.ourStartup))} s | ${fmt(median(r.rawRestore))} s | ${fmt(median(r.ourStartup) / median(r.rawRestore))} | |`,
    `| not in the ratio: \`npx tsx scripts/restore-all.ts --help\` (npm's launcher and tsx's CLI, as cron and the runbook start it) | ${fmt(median(r.launcher))} s | ${fmt(median(r.rawRestore))} s | ${fmt(median(r.launcher) / median(r.rawRestore))} | |`,
    `| peak RSS of backup-all while dumping | ${fmt(r.backupRssMiB, 1)} MiB | | | ≤ 150 MiB |`,
    `| peak RSS of restore-all | ${fmt(r.restoreRssMiB, 1)} MiB | | | |`,
    '',
    `Rounds (seconds): pg_dump ${r.rawDump.map((x) => fmt(x)).join(', ')}; backup-all ${r.ourBackup.map((x) => fmt(x)).join(', ')}; pg_restore ${r.rawRestore.map((x) => fmt(x)).join(', ')}; restore-all ${r.ourRestore.map((x) => fmt(x)).join(', ')}; restore-all --help ${r.ourStartup.map((x) => fmt(x)).join(', ')}; npx tsx restore-all --help ${r.launcher.map((x) => fmt(x)).join(', ')}.`,
    '',
    `backup-all and restore-all ran as \`node --import tsx scripts/<name>.ts\`${CRON_NODE_OPTIONS ? ` with cron/llc-ops.crontab's NODE_OPTIONS=${CRON_NODE_OPTIONS}` : ''}: the script's own work. Cron, the systemd units and the runbooks start them with \`npx tsx\`, which adds the launcher's time (its row: the difference to the start-up row) to every run, once.`,
    '',
  ].join('\n');
}

export function postgresVerdicts(r: PgBenchResult): string[] {
  const failures: string[] = [];
  if (median(r.ourBackup) / median(r.rawDump) > 0.6) failures.push('backup time ratio above 0.6');
  if (r.ourDumpBytes / r.rawDumpBytes > 1.1) failures.push('backup size ratio above 1.1');
  if (median(r.ourRestore) / median(r.rawRestore) > 1.1) failures.push('restore time ratio above 1.1');
  if (r.backupRssMiB > 150) failures.push('backup-all peak RSS above 150 MiB');
  return failures;
}
