// npm run bench: our scripts against the raw tools on the same data in the same run; writes docs/performance.md.
// Ratios, not absolute times (shared machines make seconds noise). LLC_BENCH_ROWS / LLC_BENCH_ROUNDS to resize.
import { writeFileSync } from 'node:fs';
import { cpus, totalmem } from 'node:os';
import { join } from 'node:path';
import { benchPostgres, postgresReport, postgresVerdicts } from './postgres.ts';
import { benchS3, s3Report, s3Verdicts } from './s3.ts';
import { ROOT } from './util.ts';

const log = (s: string) => process.stderr.write(`bench: ${s}\n`);
const rounds = Number(process.env.LLC_BENCH_ROUNDS ?? 3);
const sections: string[] = [];
const failures: string[] = [];

const pg = await benchPostgres({ rows: Number(process.env.LLC_BENCH_ROWS ?? 1_000_000), rounds, log });
sections.push(postgresReport(pg));
failures.push(...postgresVerdicts(pg));

const s3 = await benchS3({ objects: Number(process.env.LLC_BENCH_S3_OBJECTS ?? 10_000), bigObjects: 3, bigMiB: 50, rounds, log });
sections.push(s3Report(s3));
failures.push(...s3Verdicts(s3));

const doc = [
  '# Performance',
  '',
  'Written by `npm run bench` (test/bench/). Every figure compares our script with the raw tool on the same data in',
  'the same run; absolute seconds on a shared machine are noise, the ratios are the figures that matter. Peak RSS is',
  'the maximum resident set of our Node process (the tools it starts are separate processes).',
  '',
  `Run: ${new Date().toISOString()} on ${cpus().length} cores, ${(totalmem() / 2 ** 30).toFixed(0)} GiB, Node ${process.version}.`,
  '',
  ...sections,
  failures.length ? `**Targets missed:** ${failures.join('; ')}.` : 'All targets met in this run.',
  '',
  '## What the ratios include',
  '',
  '- restore-all does what the raw `pg_restore` does not: before touching the target it checks every sha256 and reads',
  '  the whole archive (unpacking it once with zstd, which checks its frame checksums, into a file that pg_restore',
  '  then loads with several jobs); afterwards it counts the rows of every table. The load itself runs at about the',
  "  raw tool's speed on this 2-core machine (the server's CPU is the limit); the checks and Node's start-up are the",
  '  difference. `verify-latest --deep` runs the same drill on a schedule, off the restore path.',
  '- The S3 export is bounded by s3rver, a single-threaded Node server: its CPU column shows how close to saturation',
  '  it ran for each client. The unchanged second run is mostly start-up and s3rver listing 10,000 keys; the hard',
  '  links themselves cost little.',
  '',
].join('\n');
writeFileSync(join(ROOT, 'docs/performance.md'), doc);
log(`wrote docs/performance.md${failures.length ? ` (targets missed: ${failures.join('; ')})` : ''}`);
process.stdout.write(doc);
