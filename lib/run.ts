// The one way to run a child process: argv arrays (never a shell), compose or local, redaction, dry-run, and
// dumps streamed straight to a file descriptor. zx runs every command through a shell and keeps all of a child's
// stdout in memory (DESIGN.md §10), so we spawn directly; zx's quote() renders commands for display and dry-run.
import { spawn, type ChildProcess } from 'node:child_process';
import { openSync, closeSync } from 'node:fs';
import type { Readable, Writable } from 'node:stream';
import { createRequire } from 'node:module';
import { OpsError } from './errors.ts';
import type { Output } from './output.ts';

/**
 * zx's quote(), loaded on first use: only a dry run, --verbose or a failure shows a command line, and zx/core is
 * tens of milliseconds of module loading that every run would pay at start-up otherwise.
 */
let zxQuote: ((arg: string) => string) | undefined;
function quote(arg: string): string {
  zxQuote ??= (createRequire(import.meta.url)('zx/core') as typeof import('zx/core')).quote;
  return zxQuote(arg);
}

/** Children still running that an interrupt stops (not those of an uninterruptible runner, which must finish). */
const running = new Set<ChildProcess>();

/**
 * Kill every interruptible child still running (synchronously), when an interrupted run ends or a second Ctrl-C
 * exits at once: the interrupt sent them SIGTERM, and one still running is not heeding it. A pg_dump, a zstd or a
 * loading psql session would go on without us, holding a snapshot or writing into a staging directory or a staged
 * database, and keep our process from exiting. The children of an uninterruptible runner (starting quiesced
 * services again, a CREATE DATABASE the server would finish anyway) are left to finish. Returns how many it killed.
 */
export function killInterruptibleChildren(): number {
  let n = 0;
  for (const child of running) {
    if (child.exitCode === null && child.signalCode === null && child.kill('SIGKILL')) n++;
  }
  running.clear();
  return n;
}

export interface Command {
  /** Program and arguments. Never a secret in here: pass secrets through `env`. */
  argv: string[];
  /** Extra environment for the child (merged over the parent's). Values of secret-looking names are masked. */
  env?: Record<string, string>;
  /** Text written to the child's stdin (SQL, for example): keeps values out of argv. */
  input?: string;
  cwd?: string;
}

export interface ComposeSettings {
  files: string[];
  projectName?: string;
  /** The compose program: ["docker", "compose"] unless set (e.g. ["podman", "compose"]). */
  command?: string[];
}

/** `docker compose -f A -f B -p P <args>`: the prefix every compose call shares. */
export function composeArgv(compose: ComposeSettings, args: string[]): string[] {
  const base = compose.command && compose.command.length > 0 ? compose.command : ['docker', 'compose'];
  const files = compose.files.flatMap((f) => ['-f', f]);
  const project = compose.projectName ? ['-p', compose.projectName] : [];
  return [...base, ...files, ...project, ...args];
}

/**
 * Wrap a command to run inside a compose service: `docker compose ... exec -T [-e NAME]... <service> argv...`.
 * -T always: a TTY corrupts binary output (DESIGN.md §6). Env values are not put in argv: `-e NAME` without a
 * value makes compose copy NAME from its own environment, which is the child env we pass it.
 */
export function composeExec(compose: ComposeSettings, service: string, cmd: Command, opts: { user?: string } = {}): Command {
  const envFlags = Object.keys(cmd.env ?? {}).flatMap((k) => ['-e', k]);
  const user = opts.user ? ['-u', opts.user] : [];
  return {
    ...cmd,
    argv: composeArgv(compose, ['exec', '-T', ...user, ...envFlags, service, ...cmd.argv]),
  };
}

export interface Result {
  code: number;
  stdout: string;
  stderr: string;
}

export class CommandError extends OpsError {
  constructor(
    readonly command: string,
    readonly code: number | null,
    readonly stderrTail: string,
    readonly signal: NodeJS.Signals | null = null,
  ) {
    const how = signal ? `killed by ${signal}` : `exited ${code}`;
    super(`${command} ${how}${stderrTail.trim() ? `: ${stderrGist(stderrTail)}` : ''}`);
  }
}

/**
 * Three lines that say why a program failed: from its last error line on ("ERROR:", "FATAL:", "pg_restore: error:"),
 * else its last three. pg_restore prints the failed statement after the error, and a long one pushed the error
 * itself out of a plain tail.
 */
export function stderrGist(stderr: string): string {
  const lines = stderr.trim().split('\n').map((l) => l.trim()).filter(Boolean);
  const last = lines.findLastIndex((l) => /\b(?:ERROR|FATAL|PANIC):|\berror:/i.test(l));
  return (last >= 0 ? lines.slice(last, last + 3) : lines.slice(-3)).join(' | ');
}

const TAIL = 16 * 1024;
/** Environment variables whose values are secrets (PGPASSWORD, AWS_SECRET_ACCESS_KEY, API keys, tokens). */
export const SECRET_ENV = /PASS|SECRET|TOKEN|KEY|AUTH/i;

/** Keep only the last TAIL characters of a stream: error messages, never bulk output. */
function collectTail(stream: NodeJS.ReadableStream | null, sink: { text: string }): void {
  stream?.setEncoding?.('utf8');
  stream?.on('data', (chunk: string) => {
    sink.text = (sink.text + chunk).slice(-TAIL);
  });
}

const spawnErrors = new WeakMap<ChildProcess, Error>();

/** How long to wait, after a child exits, for pipes it shared with a process it left running to close. */
const STDIO_GRACE_MS = 2000;

/**
 * A child's exit status, once its output pipes are read to the end: 'exit' can come before the last bytes of
 * stdout and stderr have been read (most often while other children are busy), so we wait for 'close'. A
 * daemon the child started may hold those pipes open forever: then the exit status counts after a grace period.
 */
function exitOf(child: ChildProcess): Promise<{ code: number | null; signal: NodeJS.Signals | null }> {
  return new Promise((resolve, reject) => {
    const failed = spawnErrors.get(child);
    if (failed) return reject(failed);
    child.once('error', (err) => reject(spawnErrors.get(child) ?? err));
    child.once('exit', (code, signal) => setTimeout(() => resolve({ code, signal }), STDIO_GRACE_MS).unref());
    child.once('close', (code, signal) => resolve({ code, signal }));
  });
}

/** A missing program is the most common failure on a new host: say which, and that it is not installed. */
function explainSpawnError(program: string, err: NodeJS.ErrnoException): Error {
  if (err.code === 'ENOENT') return new OpsError(`command not found: ${program} (is it installed and on PATH?)`);
  if (err.name === 'AbortError') return new OpsError(`${program} stopped: interrupted`);
  return new OpsError(`${program}: ${err.message}`);
}

export interface RunnerOptions {
  out: Output;
  dryRun?: boolean;
  signal?: AbortSignal;
  /** Base environment for children (default process.env). */
  env?: NodeJS.ProcessEnv;
  /**
   * Start children in a process group of their own: a Ctrl-C at the terminal goes to the whole foreground group,
   * and must not reach what an uninterruptible runner starts (psql would cancel its statement).
   */
  ownProcessGroup?: boolean;
}

export interface RunOptions {
  /** Safe to run during --dry-run (reads only). Everything else is printed, not run. */
  readOnly?: boolean;
  /** Return the result instead of throwing on a non-zero exit. */
  allowFailure?: boolean;
  /** Keep at most this many bytes of stdout (default 64 MiB); more is an error, never silent truncation. */
  maxStdout?: number;
  /**
   * pipeline: the last process may finish before reading all its input (pg_restore reading only an archive's
   * table of contents); a writer that then fails on the broken pipe is not an error when the last one succeeded.
   */
  readerMayStopEarly?: boolean;
  /** capture: stop this command (SIGTERM) when the signal aborts, besides the runner's own interrupt (a deadline). */
  signal?: AbortSignal;
}

/** Where a pipeline's output goes: a file (created 0600), or a consumer reading it as it comes. */
export type PipelineSink = string | ((stdout: Readable) => Promise<unknown>);

export class Runner {
  readonly dryRun: boolean;
  private readonly out: Output;
  private readonly signal?: AbortSignal;
  private readonly env: NodeJS.ProcessEnv;

  private readonly opts: RunnerOptions;
  private uninterruptibleRunner?: Runner;

  constructor(opts: RunnerOptions) {
    this.opts = opts;
    this.out = opts.out;
    this.dryRun = Boolean(opts.dryRun);
    this.signal = opts.signal;
    this.env = opts.env ?? process.env;
    // Values handed to children by environment are secrets for display purposes.
  }

  /**
   * The same runner without the interrupt: for what must still run after Ctrl-C or SIGTERM (starting a stopped
   * service again, dropping a half-restored database of ours), and for short statements that must not be cut off
   * halfway (a CREATE DATABASE the server would finish after its client is gone). A second signal still ends the
   * process at once.
   */
  uninterruptible(): Runner {
    if (!this.signal) return this;
    this.uninterruptibleRunner ??= new Runner({ ...this.opts, signal: undefined, ownProcessGroup: true });
    return this.uninterruptibleRunner;
  }

  /** A child's failure as an error: its command line and the end of its stderr, secrets masked in both. */
  private failure(cmd: Command, code: number | null, stderr: string, signal: NodeJS.Signals | null): CommandError {
    return new CommandError(this.display(cmd), code, this.out.redactor.redact(stderr), signal);
  }

  /** The command as a copy-pasteable shell line, secret env values masked. */
  display(cmd: Command): string {
    const env = Object.entries(cmd.env ?? {}).map(([k, v]) => `${k}=${SECRET_ENV.test(k) ? '***' : quote(v)}`);
    return this.out.redactor.redact([...env, ...cmd.argv.map((a) => quote(a))].join(' '));
  }

  private childEnv(cmd: Command): NodeJS.ProcessEnv {
    for (const [k, v] of Object.entries(cmd.env ?? {})) if (SECRET_ENV.test(k)) this.out.redactor.add(v);
    return { ...this.env, ...cmd.env };
  }

  private spawnChild(cmd: Command, stdio: Parameters<typeof spawn>[2]['stdio'], extra?: AbortSignal): ChildProcess {
    if (this.out.verbose) this.out.detail(`$ ${this.display(cmd)}`);
    const [program, ...args] = cmd.argv;
    if (!program) throw new OpsError('internal: empty command');
    const signal = extra && this.signal ? AbortSignal.any([this.signal, extra]) : (extra ?? this.signal);
    const child = spawn(program, args, { cwd: cmd.cwd, env: this.childEnv(cmd), stdio, signal, killSignal: 'SIGTERM', detached: Boolean(this.opts.ownProcessGroup) });
    if (signal) {
      running.add(child);
      child.once('exit', () => running.delete(child));
      // An interrupt's AbortError comes as 'error' too, while the child may still run: only a spawn that failed ends here.
      child.once('error', () => child.pid === undefined && running.delete(child));
    }
    // Always listen: an unhandled 'error' (ENOENT) would crash the process instead of failing the step.
    child.on('error', (err) => spawnErrors.set(child, explainSpawnError(program, err)));
    return child;
  }

  /** Printed instead of run under --dry-run; returns true when it was skipped. */
  private skipped(cmds: Command[], redirect?: () => string, opts: RunOptions = {}): boolean {
    if (!this.dryRun || opts.readOnly) return false;
    const to = redirect?.();
    this.out.plan(cmds.map((c) => this.display(c)).join(' | ') + (to ? ` ${to}` : ''));
    return true;
  }

  /**
   * Start a long-lived child with piped stdin/stdout (e.g. a psql session holding a snapshot). Read-only by
   * contract: callers do not use it under --dry-run.
   */
  interactive(cmd: Command): { child: ChildProcess; stderr: { text: string } } {
    const child = this.spawnChild(cmd, ['pipe', 'pipe', 'pipe']);
    const stderr = { text: '' };
    collectTail(child.stderr, stderr);
    child.stdin?.on('error', () => {});
    return { child, stderr };
  }

  /**
   * Start a child that reads what we write to its stdin (a psql session loading data). Its stdout is discarded,
   * or with `output` kept for `output()` (up to 1 MiB, null past that): what the child reports about its input.
   * `exited` rejects with a CommandError when it fails. Callers do not use it under --dry-run.
   */
  feed(cmd: Command, opts: { output?: boolean } = {}): { stdin: Writable; exited: Promise<void>; kill: () => void; output: () => string | null } {
    const child = this.spawnChild(cmd, ['pipe', opts.output ? 'pipe' : 'ignore', 'pipe']);
    const err = { text: '' };
    collectTail(child.stderr, err);
    let out: string | null = '';
    child.stdout?.setEncoding('utf8');
    child.stdout?.on('data', (chunk: string) => {
      if (out !== null) out = out.length + chunk.length > 1 << 20 ? null : out + chunk;
    });
    child.stdin!.on('error', () => {}); // a child that dies closes its stdin: its exit says why
    const exited = exitOf(child).then(({ code, signal }) => {
      if (code !== 0 || signal) throw this.failure(cmd, code, err.text, signal);
    });
    exited.catch(() => {});
    return { stdin: child.stdin!, exited, kill: () => child.kill('SIGTERM'), output: () => (opts.output ? out : null) };
  }

  /** Run and capture (small) output. */
  async capture(cmd: Command, opts: RunOptions = {}): Promise<Result> {
    if (this.skipped([cmd], undefined, opts)) return { code: 0, stdout: '', stderr: '' };
    const child = this.spawnChild(cmd, [cmd.input === undefined ? 'ignore' : 'pipe', 'pipe', 'pipe'], opts.signal);
    const max = opts.maxStdout ?? 64 * 1024 * 1024;
    const chunks: Buffer[] = [];
    let size = 0;
    let overflow = false;
    child.stdout?.on('data', (b: Buffer) => {
      size += b.length;
      if (size > max) {
        overflow = true;
        child.kill('SIGTERM');
        return;
      }
      chunks.push(b);
    });
    const err = { text: '' };
    collectTail(child.stderr, err);
    if (cmd.input !== undefined) {
      child.stdin?.on('error', () => {}); // a child that exits early closes its stdin: the exit code tells
      child.stdin?.end(cmd.input);
    }
    const { code, signal } = await exitOf(child);
    const stdout = Buffer.concat(chunks).toString('utf8');
    if (overflow) throw new OpsError(`${this.display(cmd)}: output larger than ${max} bytes`);
    if ((code !== 0 || signal) && !opts.allowFailure) {
      throw this.failure(cmd, code, err.text, signal);
    }
    return { code: code ?? -1, stdout, stderr: err.text };
  }

  /**
   * Run a pipeline `a | b | ...` whose first stdin may be a file and whose last stdout is a file (created 0600)
   * or discarded. Bytes flow between the processes and the file through the kernel, never through our memory.
   * With a consumer as stdout, the last process's output streams to it; a consumer that fails stops the pipeline
   * (its input closes) and its error is reported unless a process failed for a reason of its own.
   */
  async pipeline(cmds: Command[], files: { stdin?: string; stdout?: PipelineSink }, opts: RunOptions = {}): Promise<void> {
    const consume = typeof files.stdout === 'function' ? files.stdout : undefined;
    const outFile = typeof files.stdout === 'string' ? files.stdout : undefined;
    const redirect = () =>
      [files.stdin ? `< ${quote(files.stdin)}` : '', outFile ? `> ${quote(outFile)}` : consume ? '| (loader)' : '']
        .filter(Boolean)
        .join(' ');
    if (this.skipped(cmds, redirect, opts)) return;
    const inFd = files.stdin ? openSync(files.stdin, 'r') : undefined;
    const outFd = outFile ? openSync(outFile, 'w', 0o600) : undefined;
    const children: { child: ChildProcess; cmd: Command; err: { text: string } }[] = [];
    try {
      let prev: ChildProcess | undefined;
      cmds.forEach((cmd, i) => {
        const last = i === cmds.length - 1;
        const stdin = prev ? prev.stdout! : (inFd ?? 'ignore');
        const stdout = last ? (outFd ?? (consume ? 'pipe' : 'ignore')) : 'pipe';
        const child = this.spawnChild(cmd, [stdin, stdout, 'pipe']);
        // The next process owns the pipe now; our copy must close or the writer never sees EOF/EPIPE.
        if (prev) prev.stdout?.destroy();
        const err = { text: '' };
        collectTail(child.stderr, err);
        children.push({ child, cmd, err });
        prev = child;
      });
    } finally {
      if (inFd !== undefined) closeSync(inFd);
      if (outFd !== undefined) closeSync(outFd);
    }
    let consumerFailed: { error: unknown } | undefined;
    const lastOut = children.at(-1)?.child.stdout;
    const consumed = consume && lastOut
      ? consume(lastOut).then(
          () => lastOut.resume(), // whatever the consumer left unread must not stall the writer
          (error: unknown) => {
            consumerFailed = { error };
            lastOut.destroy();
          },
        )
      : undefined;
    const exits = await Promise.all(children.map(({ child }) => exitOf(child)));
    await consumed;
    // Name the process that really failed: a writer whose reader died only reports a broken pipe (SIGPIPE, or
    // "Broken pipe" from tee and friends), and a reader whose writer died fails because its input broke.
    let failed = children.map((c, i) => ({ ...c, ...exits[i]! })).filter((c) => c.code !== 0 || c.signal);
    // Node's stdio pipes are socket pairs: a dead reader shows as "Connection reset by peer" as often as EPIPE.
    const brokenPipe = (c: (typeof failed)[number]) => c.signal === 'SIGPIPE' || /broken pipe|EPIPE|connection reset by peer|ECONNRESET/i.test(c.err.text);
    const lastOk = exits.at(-1)?.code === 0 && !exits.at(-1)?.signal;
    if (opts.readerMayStopEarly && lastOk) failed = failed.filter((c) => !brokenPipe(c));
    const ownFailure = failed.find((c) => !brokenPipe(c));
    if (consumerFailed && !ownFailure) throw consumerFailed.error;
    const culprit = ownFailure ?? failed.at(-1);
    if (culprit) throw this.failure(culprit.cmd, culprit.code, culprit.err.text, culprit.signal);
  }
}
