// Human output and --json, decided in one place: colour and spinner only on a TTY, timestamps when not (cron logs).
import { Chalk, type ChalkInstance } from 'chalk';
import type { Ora } from 'ora';
import { Redactor } from './redact.ts';

export interface OutputOptions {
  json?: boolean;
  verbose?: boolean;
  stdout?: NodeJS.WritableStream & { isTTY?: boolean };
  stderr?: NodeJS.WritableStream & { isTTY?: boolean };
  env?: NodeJS.ProcessEnv;
  now?: () => Date;
  redactor?: Redactor;
  /** --dry-run: a step that printed plans instead of running them ends with a plan line, not "ok". */
  dryRun?: boolean;
}

export interface StepInfo {
  /** Bytes produced by the step, shown as a size. */
  bytes?: number;
  /** A short extra note, e.g. "12 tables, 10432 rows". */
  note?: string;
  /** What the step found wrong (e.g. "3 problems"): the step ran to its end, but its line is an error, not "ok". */
  failed?: string;
}

/** Step info for a check that returns what it found wrong: "failed: 3 mismatched" when it found any. */
export function failedIfAny(what: string): (found: readonly unknown[]) => StepInfo {
  return (found) => ({ failed: found.length ? `${found.length} ${what}` : undefined });
}

export function formatBytes(n: number): string {
  if (!Number.isFinite(n)) return String(n);
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
  let v = n;
  let i = 0;
  while (v >= 1024 && i < units.length - 1) {
    v /= 1024;
    i++;
  }
  return i === 0 ? `${v} B` : `${v.toFixed(1)} ${units[i]}`;
}

/** 12 ms, 4.2 s, 3 min 7 s, 5 h 2 min, 3 d 4 h: rounded once, at the unit shown last (never "60 s"). */
export function formatDuration(ms: number): string {
  if (ms < 999.5) return `${Math.round(ms)} ms`;
  if (ms < 59_950) return `${(ms / 1000).toFixed(1)} s`;
  const s = Math.round(ms / 1000);
  if (s < 3600) return `${Math.floor(s / 60)} min ${s % 60} s`;
  const m = Math.round(ms / 60_000);
  if (m < 24 * 60) return `${Math.floor(m / 60)} h ${m % 60} min`;
  const h = Math.round(ms / 3_600_000);
  return `${Math.floor(h / 24)} d ${h % 24} h`;
}

export class Output {
  readonly json: boolean;
  readonly verbose: boolean;
  readonly redactor: Redactor;
  readonly interactive: boolean;
  private readonly stdout: NodeJS.WritableStream;
  private readonly human: NodeJS.WritableStream;
  private readonly c: ChalkInstance;
  private readonly now: () => Date;
  private readonly stamp: boolean;
  private spinner: Ora | undefined;
  private readonly dryRun: boolean;
  /** plan lines printed so far: a dry-run step that printed any did not do all its work. */
  private plans = 0;

  constructor(opts: OutputOptions = {}) {
    const env = opts.env ?? process.env;
    const stdout = opts.stdout ?? process.stdout;
    const stderr = opts.stderr ?? process.stderr;
    this.json = Boolean(opts.json);
    this.verbose = Boolean(opts.verbose);
    this.dryRun = Boolean(opts.dryRun);
    this.redactor = opts.redactor ?? new Redactor();
    this.now = opts.now ?? (() => new Date());
    this.stdout = stdout;
    // With --json, stdout carries exactly one JSON document; human lines move to stderr.
    this.human = this.json ? stderr : stdout;
    const tty = Boolean((this.human as { isTTY?: boolean }).isTTY) && env.TERM !== 'dumb';
    this.interactive = tty && !env.CI;
    const colour = tty && env.NO_COLOR === undefined && env.FORCE_COLOR !== '0';
    this.c = new Chalk({ level: colour ? 1 : 0 });
    this.stamp = !tty;
  }

  private line(text: string): void {
    const prefix = this.stamp ? `${this.now().toISOString().replace(/\.\d{3}Z$/, 'Z')} ` : '';
    this.human.write(`${prefix}${this.redactor.redact(text)}\n`);
  }

  info(msg: string): void {
    this.line(msg);
  }

  detail(msg: string): void {
    if (this.verbose) this.line(this.c.dim(msg));
  }

  ok(msg: string): void {
    this.line(`${this.c.green('ok')}    ${msg}`);
  }

  warn(msg: string): void {
    this.line(`${this.c.yellow('warn')}  ${msg}`);
  }

  error(msg: string): void {
    this.line(`${this.c.red('error')} ${msg}`);
  }

  plan(msg: string): void {
    this.plans++;
    this.line(`${this.c.cyan('plan')}  ${msg}`);
  }

  /** Run one step: a spinner on a TTY, then one line with duration (and size, if the step reports one). */
  async step<T>(label: string, fn: () => Promise<T>, info?: (result: T) => StepInfo): Promise<T> {
    const started = performance.now();
    const plansBefore = this.plans;
    // A terminal that reports no width (0 columns: some serial consoles, `script` without stty) gets no spinner: ora
    // would count every line as infinitely many rows to clear, and write escape codes without end.
    if (this.interactive && ((this.human as { columns?: number }).columns ?? 0) > 0) {
      // Loaded only on a TTY: cron and CI never pay for the spinner.
      const { default: ora } = await import('ora');
      this.spinner = ora({ text: this.redactor.redact(label), stream: this.human }).start();
    }
    try {
      const result = await fn();
      const ms = performance.now() - started;
      const extra = info?.(result) ?? {};
      const parts = [formatDuration(ms)];
      if (extra.bytes !== undefined) parts.push(formatBytes(extra.bytes));
      if (extra.note) parts.push(extra.note);
      this.stopSpinner();
      // Under --dry-run a step whose commands were printed, not run, did nothing to report as done.
      if (this.dryRun && this.plans > plansBefore) this.plan(`${label} ${this.c.dim('(dry run: not run)')}`);
      else if (extra.failed) this.error(`${label} failed: ${extra.failed} ${this.c.dim(`(${parts.join(', ')})`)}`);
      else this.ok(`${label} ${this.c.dim(`(${parts.join(', ')})`)}`);
      return result;
    } catch (err) {
      this.stopSpinner();
      this.error(`${label} failed after ${formatDuration(performance.now() - started)}`);
      throw err;
    }
  }

  private stopSpinner(): void {
    if (this.spinner) {
      this.spinner.stop();
      this.spinner = undefined;
    }
  }

  /** Whether the --json document has been written (there is only ever one). */
  resultWritten = false;

  /** The single JSON document of --json mode, redacted like everything else. */
  result(doc: unknown): void {
    if (!this.json || this.resultWritten) return;
    this.resultWritten = true;
    // Each string before it is escaped (a secret with a quote in it is spelled otherwise in JSON), then the whole.
    const text = JSON.stringify(doc, (_key, value: unknown) => (typeof value === 'string' ? this.redactor.redact(value) : value), 2);
    this.stdout.write(`${this.redactor.redact(text)}\n`);
  }
}
