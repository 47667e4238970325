// backup-all: one complete backup set of every configured source, published atomically, with metrics.
// Example: npx tsx scripts/backup-all.ts --config /srv/llc/ops.config.yaml
import { runScript, startIfEntry, type CommandSpec } from '../lib/cli.ts';
import { runBackup } from '../lib/backup.ts';
import { setUp } from '../lib/ops.ts';
import { configuredNames, parseOnly } from '../lib/sources/index.ts';
import { writeBackupMetrics } from '../lib/metrics.ts';
import { ping } from '../lib/ping.ts';
import { EXIT } from '../lib/errors.ts';

export const spec: CommandSpec = {
  name: 'backup-all',
  summary: 'write one complete backup set of every configured source (PostgreSQL, Qdrant, S3, Neo4j)',
  examples: ['npx tsx scripts/backup-all.ts', 'npx tsx scripts/backup-all.ts --only postgres --dry-run', 'npx tsx scripts/backup-all.ts --config /srv/llc/ops.config.yaml --json'],
  mutating: true,
  flags: {
    only: { type: 'string', multiple: true, value: 'SOURCES', description: 'back up only these sources (comma-separated: postgres,qdrant,s3,neo4j)' },
    tag: { type: 'string', multiple: true, value: 'TAG', description: 'tag the set (e.g. pre-migration); lower-case letters, digits, dashes' },
  },
  notes: ['A set is published only if every source succeeded; otherwise nothing is published and the exit code is 1.'],
};

export function main(argv: string[]): Promise<number> {
  return runScript(spec, argv, async (ctx) => {
    const ops = setUp(ctx);
    const only = parseOnly(ctx.values.only as string[] | undefined);
    const sources = configuredNames(ops.loaded, only);
    const configured = configuredNames(ops.loaded, undefined);
    const monitoring = ops.loaded.config.monitoring;
    if (!ctx.dryRun) await ping(monitoring?.ping, 'start', ctx.out);
    const report = await runBackup(ops, { only, tags: (ctx.values.tag as string[] | undefined) ?? [], command: `backup-all ${argv.join(' ')}`.trim() });
    if (!ctx.dryRun) {
      if (monitoring?.textfileDir) {
        await writeBackupMetrics(monitoring.textfileDir, { ok: report.ok, endedAt: new Date(), perSource: report.perSource, sources: configured, ran: sources }).catch((err: Error) =>
          ctx.out.warn(`could not write metrics to ${monitoring.textfileDir}: ${err.message}`),
        );
      }
      await ping(monitoring?.ping, report.ok ? 'success' : 'failure', ctx.out);
    }
    if (!report.ok) throw report.error;
    const o = report.outcome;
    ctx.out.result({
      ok: true,
      dryRun: ctx.dryRun,
      ...(o ? { id: o.id, dir: o.dir, bytes: o.bytes, durationMs: o.durationMs, sources: o.manifest.sources, artifacts: o.manifest.artifacts } : {}),
    });
    return EXIT.ok;
  });
}

startIfEntry(import.meta.url, main);
