// Run a script of scripts/ as a child process, the way an operator or cron does (no TTY on stdin).
import { spawn } from 'node:child_process';
import { join } from 'node:path';

export const ROOT = join(import.meta.dirname, '..', '..');
/** tsx's loader by absolute URL: scripts also run from other working directories (cron does). */
const TSX = import.meta.resolve('tsx');

export interface ScriptRun {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
}

export interface RunOpts {
  env?: Record<string, string | undefined>;
  cwd?: string;
  /** Replace the environment instead of extending it (cron-like runs). */
  cleanEnv?: boolean;
  input?: string;
  /**
   * Send `signal` once (an operator's Ctrl-C), the first time the output so far (stdout and stderr) matches `when`,
   * or `when()` returns true (checked as output comes and every 50 ms: a stand-in's log file, say).
   */
  interrupt?: { when: RegExp | (() => boolean); signal: NodeJS.Signals; /** Send it this many times, `every` ms apart (Ctrl-C twice; default 300 ms). */ times?: number; every?: number };
}

export function scriptPath(name: string): string {
  return join(ROOT, 'scripts', `${name}.ts`);
}

export function runScriptProcess(name: string, args: string[], opts: RunOpts = {}): Promise<ScriptRun> {
  const base = opts.cleanEnv ? {} : { ...process.env };
  delete base.NO_COLOR;
  const env: Record<string, string> = {};
  for (const [k, v] of Object.entries({ ...base, ...opts.env })) if (v !== undefined) env[k] = v;
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ['--import', TSX, scriptPath(name), ...args], { cwd: opts.cwd ?? ROOT, env, stdio: ['pipe', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    let interrupted = false;
    const watch = () => {
      const when = opts.interrupt?.when;
      if (!when || interrupted || !(typeof when === 'function' ? when() : when.test(stdout + stderr))) return;
      interrupted = true;
      child.kill(opts.interrupt!.signal);
      for (let i = 1; i < (opts.interrupt!.times ?? 1); i++) setTimeout(() => child.kill(opts.interrupt!.signal), (opts.interrupt!.every ?? 300) * i);
    };
    const poll = opts.interrupt ? setInterval(watch, 50) : undefined;
    child.on('exit', () => clearInterval(poll));
    child.stdout.setEncoding('utf8').on('data', (d: string) => ((stdout += d), watch()));
    child.stderr.setEncoding('utf8').on('data', (d: string) => ((stderr += d), watch()));
    child.on('error', reject);
    child.stdin.end(opts.input ?? '');
    child.on('close', (code, signal) => resolve({ code, signal, stdout, stderr }));
  });
}
