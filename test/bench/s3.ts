// S3 on s3rver: backup-all (s3 only) against `rclone copy --transfers 16` of the same bucket in the same run, and a
// second backup-all of the unchanged bucket (hard links) against the first: time and allocated disk.
// Alone: npx tsx test/bench/s3.ts (prints the section; LLC_BENCH_S3_OBJECTS, LLC_BENCH_ROUNDS to resize).
import { lstatSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { randomBytes } from 'node:crypto';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { CreateBucketCommand, PutObjectCommand } from '@aws-sdk/client-s3';
import { forEachBounded } from '../../lib/pool.ts';
import { listCompleteSets } from '../../lib/backup-set.ts';
import { s3rverClient, startS3rver } from '../helpers/s3rver.ts';
import { CRON_NODE_OPTIONS, fmt, median, must, timed, timedScript, inAlternatingOrder, settled } from './util.ts';

export interface S3BenchResult {
  objects: number;
  smallBytes: number;
  bigObjects: number;
  bigBytes: number;
  rounds: number;
  rclone: number[];
  ours: number[];
  oursRssMiB: number;
  /** Second run of the unchanged bucket, and the full run just before it, per round. */
  second: number[];
  first: number[];
  secondRssMiB: number;
  /** Allocated bytes (du-like, hard links once) of the backup root after the first and after the second run. */
  firstAllocated: number[];
  secondExtra: number[];
  linked: number;
  /** `rclone lsf -R --fast-list` of the bucket: what only listing it takes, the floor of any incremental run. */
  listing: number[];
  /** CPU seconds s3rver spent per wall second while serving each side (1.0 = its one thread saturated). */
  s3rverBusyOurs: number[];
  s3rverBusyRclone: number[];
}

/** Allocated bytes under dir, each inode once (what `du` reports; hard-linked files cost nothing twice). */
export function allocatedBytes(dir: string): number {
  const seen = new Set<string>();
  let total = 0;
  const walk = (p: string) => {
    const st = lstatSync(p);
    const id = `${st.dev}:${st.ino}`;
    if (!seen.has(id)) {
      seen.add(id);
      total += st.blocks * 512;
    }
    if (st.isDirectory()) for (const n of readdirSync(p)) walk(join(p, n));
  };
  walk(dir);
  return total;
}

function countFiles(dir: string): number {
  return readdirSync(dir, { withFileTypes: true, recursive: true }).filter((e) => e.isFile()).length;
}

/** utime + stime of a process in seconds (Linux /proc). */
function cpuSeconds(pid: number): number {
  const fields = readFileSync(`/proc/${pid}/stat`, 'utf8').replace(/^.*\) /, '').split(' ');
  return (Number(fields[11]) + Number(fields[12])) / 100;
}

export async function benchS3(opts: { objects: number; bigObjects: number; bigMiB: number; rounds: number; log: (s: string) => void }): Promise<S3BenchResult> {
  const work = mkdtempSync(join(tmpdir(), 'llc-bench-s3-'));
  const s3 = await startS3rver({ dir: join(work, 's3rver') });
  const client = s3rverClient(s3);
  try {
    opts.log(`s3: seeding ${opts.objects} small objects and ${opts.bigObjects} of ${opts.bigMiB} MiB into s3rver...`);
    await client.send(new CreateBucketCommand({ Bucket: 'bench' }));
    let smallBytes = 0;
    // Keys spread over prefixes like real data (and so s3rver's paged listing does not rescan one huge directory).
    await forEachBounded(Array.from({ length: opts.objects }, (_, i) => i), 32, async (i) => {
      const body = randomBytes(1024 + Math.floor(Math.random() * 31 * 1024));
      smallBytes += body.length;
      await client.send(new PutObjectCommand({ Bucket: 'bench', Key: `docs/${i % 100}/${i}.bin`, Body: body, ContentType: 'application/octet-stream', Metadata: { n: String(i) } }));
    });
    for (let i = 0; i < opts.bigObjects; i++) {
      await client.send(new PutObjectCommand({ Bucket: 'bench', Key: `big/${i}.bin`, Body: randomBytes(opts.bigMiB * 2 ** 20), ContentType: 'application/x-big' }));
    }
    const bigBytes = opts.bigObjects * opts.bigMiB * 2 ** 20;

    writeFileSync(join(work, '.env'), `BENCH_S3_ACCESS=${s3.accessKey}\nBENCH_S3_SECRET=${s3.secretKey}\n`, { mode: 0o600 });
    const root = join(work, 'backups');
    const config = join(work, 'ops.config.yaml');
    writeFileSync(config, `backup:\n  root: ${root}\nsources:\n  s3:\n    endpoint: ${s3.endpoint}\n    accessKey: \${BENCH_S3_ACCESS}\n    secretKey: \${BENCH_S3_SECRET}\n    buckets: [bench]\n    concurrency: 16\n`);
    // rclone reads its remote from the environment: credentials never on its command line.
    const rcloneEnv = {
      RCLONE_CONFIG_BENCH_TYPE: 's3',
      RCLONE_CONFIG_BENCH_PROVIDER: 'Other',
      RCLONE_CONFIG_BENCH_ENDPOINT: s3.endpoint,
      RCLONE_CONFIG_BENCH_REGION: 'us-east-1',
      RCLONE_CONFIG_BENCH_FORCE_PATH_STYLE: 'true',
      RCLONE_CONFIG_BENCH_ACCESS_KEY_ID: s3.accessKey,
      RCLONE_CONFIG_BENCH_SECRET_ACCESS_KEY: s3.secretKey,
      RCLONE_CONFIG: join(work, 'rclone.conf'),
      // A CA bundle from the host environment makes rclone's S3 backend refuse its own HTTP transport; the endpoint is plain http.
      AWS_CA_BUNDLE: '',
    };
    const rcloneDir = join(work, 'rclone-copy');

    const r: S3BenchResult = {
      objects: opts.objects, smallBytes, bigObjects: opts.bigObjects, bigBytes, rounds: opts.rounds,
      rclone: [], ours: [], oursRssMiB: 0, listing: [], second: [], first: [], secondRssMiB: 0, firstAllocated: [], secondExtra: [], linked: 0,
      s3rverBusyOurs: [], s3rverBusyRclone: [],
    };
    const busy = async <T extends { seconds: number }>(fn: () => Promise<T>, into: number[]): Promise<T> => {
      const c0 = cpuSeconds(s3.pid);
      const t = await fn();
      into.push((cpuSeconds(s3.pid) - c0) / t.seconds);
      return t;
    };
    for (let i = 0; i < opts.rounds; i++) {
      const rcloneRun = async () => {
        rmSync(rcloneDir, { recursive: true, force: true });
        mkdirSync(rcloneDir);
        await settled(); // what the last run wrote and this one removed, written back before the clock starts
        // --fast-list: one recursive listing, as we do (s3rver also returns no CommonPrefixes for rclone's per-directory listing).
        const t = await busy(() => timed(['rclone', 'copy', '--transfers', '16', '--fast-list', 'bench:bench', rcloneDir], { env: rcloneEnv }), r.s3rverBusyRclone);
        r.rclone.push(must(t, 'rclone copy').seconds);
        const copied = countFiles(rcloneDir);
        if (copied !== opts.objects + opts.bigObjects) throw new Error(`rclone copied ${copied} files, expected ${opts.objects + opts.bigObjects}`);
      };
      const oursRun = async () => {
        rmSync(root, { recursive: true, force: true });
        await settled();
        const t = await busy(() => timedScript('backup-all', ['--config', config]), r.s3rverBusyOurs);
        r.ours.push(t.seconds);
        r.oursRssMiB = Math.max(r.oursRssMiB, t.rssMiB);
      };
      await inAlternatingOrder(i, rcloneRun, oursRun, async () => {}); // each run settles after its own clean-up
      opts.log(`s3 round ${i + 1}: rclone ${fmt(r.rclone.at(-1)!)} s, backup-all ${fmt(r.ours.at(-1)!)} s`);
      // The unchanged bucket again, right after our full run of this round.
      const a1 = allocatedBytes(root);
      await settled(); // also: a new set id needs a new second
      const lsf = must(await timed(['rclone', 'lsf', '-R', '--fast-list', '--files-only', 'bench:bench'], { env: rcloneEnv }), 'rclone lsf');
      r.listing.push(lsf.seconds);
      const t2 = await timedScript('backup-all', ['--config', config]);
      r.second.push(t2.seconds);
      r.first.push(r.ours.at(-1)!);
      r.secondRssMiB = Math.max(r.secondRssMiB, t2.rssMiB);
      r.firstAllocated.push(a1);
      r.secondExtra.push(allocatedBytes(root) - a1);
      const newest = (await listCompleteSets(root)).at(-1)!;
      const details = newest.manifest.sources.s3!.details as { buckets: { linked: number }[] };
      r.linked = details.buckets[0]!.linked;
      opts.log(`s3 round ${i + 1}: second run ${fmt(t2.seconds)} s, +${(r.secondExtra.at(-1)! / 2 ** 20).toFixed(1)} MiB on ${(a1 / 2 ** 20).toFixed(1)} MiB, ${r.linked} hard-linked`);
    }
    return r;
  } finally {
    client.destroy();
    await s3.stop();
    rmSync(work, { recursive: true, force: true });
  }
}

export function s3Report(r: S3BenchResult): string {
  const mib = (b: number) => (b / 2 ** 20).toFixed(1);
  const time = median(r.ours) / median(r.rclone);
  const secondRatios = r.second.map((s, i) => s / r.first[i]!);
  const diskRatios = r.secondExtra.map((x, i) => x / r.firstAllocated[i]!);
  return [
    `## S3 (s3rver; ${r.objects} objects of 1-32 KiB, ${mib(r.smallBytes)} MiB, plus ${r.bigObjects} of ${mib(r.bigBytes / Math.max(1, r.bigObjects))} MiB; median of ${r.rounds} rounds)`,
    '',
    '| measure | ours | raw tool | ratio | target |',
    '|---|---|---|---|---|',
    `| export time: backup-all (list, stream, sha256, index, syncfs, publish) vs \`rclone copy --transfers 16\` | ${fmt(median(r.ours))} s | ${fmt(median(r.rclone))} s | **${fmt(time)}** | ≤ 1.0 |`,
    `| peak RSS of backup-all while exporting | ${fmt(r.oursRssMiB, 1)} MiB | | | ≤ 200 MiB |`,
    `| second backup-all of the unchanged bucket vs the first (time) | ${fmt(median(r.second))} s | ${fmt(median(r.first))} s | **${fmt(median(secondRatios), 3)}** | ≤ 0.15 |`,
    `| disk added by the second set (allocated, hard links once) vs the first set | ${mib(median(r.secondExtra))} MiB | ${mib(median(r.firstAllocated))} MiB | **${(median(diskRatios) * 100).toFixed(2)} %** | ≤ 2 % |`,
    `| listing alone: \`rclone lsf -R --fast-list\` of the bucket vs our first run (the floor of any run that must list) | | ${fmt(median(r.listing))} s | ${fmt(median(r.listing.map((x, i) => x / r.first[i]!)))} | |`,
    `| s3rver CPU per wall second while serving (1.00 = its single thread saturated) | ${fmt(median(r.s3rverBusyOurs))} | ${fmt(median(r.s3rverBusyRclone))} | | |`,
    '',
    `Rounds (seconds): rclone ${r.rclone.map((x) => fmt(x)).join(', ')}; backup-all ${r.ours.map((x) => fmt(x)).join(', ')}; second backup-all ${r.second.map((x) => fmt(x)).join(', ')} (${r.linked} objects hard-linked); rclone lsf ${r.listing.map((x) => fmt(x)).join(', ')}. Peak RSS of the second run ${fmt(r.secondRssMiB, 1)} MiB.`,
    '',
    `backup-all ran as \`node --import tsx scripts/backup-all.ts\`${CRON_NODE_OPTIONS ? ` with cron/llc-ops.crontab's NODE_OPTIONS=${CRON_NODE_OPTIONS}` : ''}; cron and the runbooks start it with \`npx tsx\`, which adds the launcher's time once per run (PostgreSQL section).`,
    '',
  ].join('\n');
}

export function s3Verdicts(r: S3BenchResult): string[] {
  const failures: string[] = [];
  if (median(r.ours) / median(r.rclone) > 1.0) failures.push('S3 export time ratio above 1.0');
  if (r.oursRssMiB > 200) failures.push('S3 backup-all peak RSS above 200 MiB');
  if (median(r.second.map((s, i) => s / r.first[i]!)) > 0.15) failures.push('S3 unchanged second run above 15% of the first');
  if (median(r.secondExtra.map((x, i) => x / r.firstAllocated[i]!)) > 0.02) failures.push('S3 unchanged second run adds more than 2% disk');
  return failures;
}

if (import.meta.filename === process.argv[1]) {
  const r = await benchS3({
    objects: Number(process.env.LLC_BENCH_S3_OBJECTS ?? 10_000),
    bigObjects: 3,
    bigMiB: 50,
    rounds: Number(process.env.LLC_BENCH_ROUNDS ?? 3),
    log: (s) => process.stderr.write(`bench: ${s}\n`),
  });
  process.stdout.write(s3Report(r));
  const failures = s3Verdicts(r);
  if (failures.length) process.stdout.write(`\n**Targets missed:** ${failures.join('; ')}.\n`);
}
