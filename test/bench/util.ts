// Timing helpers for the benchmarks: wall time of a child process, peak RSS of our scripts, medians.
import { spawn, spawnSync } from 'node:child_process';
import { readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { tmpdir } from 'node:os';

export const ROOT = join(import.meta.dirname, '..', '..');

export interface Timed {
  seconds: number;
  code: number | null;
  stderr: string;
}

export function timed(argv: string[], opts: { env?: NodeJS.ProcessEnv; stdout?: 'ignore' | 'inherit' } = {}): Promise<Timed> {
  const t0 = performance.now();
  return new Promise((resolve, reject) => {
    const child = spawn(argv[0]!, argv.slice(1), { env: { ...process.env, ...opts.env }, stdio: ['ignore', opts.stdout ?? 'ignore', 'pipe'] });
    let stderr = '';
    child.stderr.setEncoding('utf8').on('data', (d: string) => (stderr = (stderr + d).slice(-8000)));
    child.on('error', reject);
    child.on('close', (code) => resolve({ seconds: (performance.now() - t0) / 1000, code, stderr }));
  });
}

/** NODE_OPTIONS of cron/llc-ops.crontab (the systemd units set the same): our scripts are measured the way the schedule runs them. */
export const CRON_NODE_OPTIONS = /^NODE_OPTIONS=(.*)$/m.exec(readFileSync(join(ROOT, 'cron', 'llc-ops.crontab'), 'utf8'))?.[1]?.trim() ?? '';

/** Run scripts/<name>.ts through test/bench/measure.ts: wall time and peak RSS (MiB) of our process, started as cron starts it. */
export async function timedScript(name: string, args: string[], env: NodeJS.ProcessEnv = {}): Promise<Timed & { rssMiB: number }> {
  const rssFile = join(tmpdir(), `llc-bench-rss-${process.pid}-${Date.now()}`);
  const r = await timed([process.execPath, '--import', 'tsx', join(ROOT, 'test/bench/measure.ts'), join(ROOT, 'scripts', `${name}.ts`), ...args], {
    env: { ...(CRON_NODE_OPTIONS && { NODE_OPTIONS: CRON_NODE_OPTIONS }), ...env, LLC_BENCH_RSS_FILE: rssFile },
  });
  if (r.code !== 0) throw new Error(`${name} ${args.join(' ')} exited ${r.code}: ${r.stderr}`);
  const rssMiB = Number(readFileSync(rssFile, 'utf8')) / 1024;
  rmSync(rssFile, { force: true });
  return { ...r, rssMiB };
}

export function must(r: Timed, what: string): Timed {
  if (r.code !== 0) throw new Error(`${what} exited ${r.code}: ${r.stderr}`);
  return r;
}

export const median = (xs: number[]): number => {
  const s = [...xs].sort((a, b) => a - b);
  const m = Math.floor(s.length / 2);
  return s.length % 2 ? s[m]! : (s[m - 1]! + s[m]!) / 2;
};

export const fmt = (n: number, digits = 2) => n.toFixed(digits);

/**
 * Both sides of a round, in alternating order so neither always gets the warmer cache, each after `settle`: the
 * run before it must not still be working (its dirty pages written back, a server cleaning up after it) while
 * this one is timed, or whichever side goes second pays for the first (with an odd number of rounds, one side
 * more often than the other).
 */
export async function inAlternatingOrder(round: number, raw: () => Promise<unknown>, ours: () => Promise<unknown>, settle: () => Promise<void> = settled): Promise<void> {
  for (const run of round % 2 ? [ours, raw] : [raw, ours]) {
    await settle();
    await run();
  }
}

/** The file system's dirty pages written back (sync), then a second of quiet. */
export async function settled(): Promise<void> {
  spawnSync('sync');
  await new Promise((res) => setTimeout(res, 1000));
}
