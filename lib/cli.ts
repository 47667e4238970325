// Flag parsing, --help and the top-level error handling every script shares (node:util parseArgs, strict).
import { parseArgs } from 'node:util';
import { realpathSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { EXIT, OpsError, UsageError, exitCodeOf } from './errors.ts';
import { Output } from './output.ts';
import { killInterruptibleChildren } from './run.ts';

export interface FlagSpec {
  type: 'string' | 'boolean';
  short?: string;
  multiple?: boolean;
  /** Shown in --help after the flag, e.g. "FILE". */
  value?: string;
  description: string;
}

export interface CommandSpec {
  name: string;
  summary: string;
  /** Example invocations, shown in --help. */
  examples: string[];
  /** Mutating scripts get --dry-run and --yes. */
  mutating: boolean;
  flags: Record<string, FlagSpec>;
  /** Name of positional arguments, if the script takes any (e.g. "FILE..."). */
  positionals?: string;
  /** Extra lines for --help (exit codes beyond the common ones, notes). */
  notes?: string[];
}

const COMMON: Record<string, FlagSpec> = {
  help: { type: 'boolean', short: 'h', description: 'show this help and exit' },
  config: { type: 'string', value: 'FILE', description: 'config file (default: $OPS_CONFIG or ./ops.config.yaml)' },
  // Not --env-file: node takes that option for itself even after the script name (nodejs/node#54232).
  dotenv: { type: 'string', value: 'FILE', description: '.env file loaded before the config (default: .env beside the config)' },
  json: { type: 'boolean', description: 'print one JSON document on stdout and nothing else there' },
  verbose: { type: 'boolean', short: 'v', description: 'print every command run and more detail' },
};

const MUTATING: Record<string, FlagSpec> = {
  'dry-run': { type: 'boolean', short: 'n', description: 'print the exact plan and change nothing' },
  yes: { type: 'boolean', short: 'y', description: 'do not ask; without a TTY a destructive step needs this' },
};

export function allFlags(spec: CommandSpec): Record<string, FlagSpec> {
  return { ...COMMON, ...(spec.mutating ? MUTATING : {}), ...spec.flags };
}

export function helpText(spec: CommandSpec): string {
  const flags = allFlags(spec);
  const rows = Object.entries(flags).map(([name, f]) => {
    const left = `${f.short ? `-${f.short}, ` : '    '}--${name}${f.value ? ` ${f.value}` : ''}`;
    return `  ${left.padEnd(30)} ${f.description}`;
  });
  return [
    `${spec.name}: ${spec.summary}`,
    '',
    'Usage:',
    ...spec.examples.map((e) => `  ${e}`),
    '',
    'Options:',
    ...rows,
    '',
    'Exit codes: 0 done, 1 a step failed, 2 bad usage or config, 3 locked, 4 verification failed, 5 refused by a safety check',
    ...(spec.notes ?? []),
    '',
  ].join('\n');
}

export type Values = Record<string, string | boolean | string[] | undefined>;

export interface Parsed {
  values: Values;
  positionals: string[];
}

export function parseCommand(spec: CommandSpec, argv: string[]): Parsed {
  const options: Record<string, { type: 'string' | 'boolean'; short?: string; multiple?: boolean }> = {};
  for (const [name, f] of Object.entries(allFlags(spec))) {
    options[name] = { type: f.type, ...(f.short ? { short: f.short } : {}), ...(f.multiple ? { multiple: true } : {}) };
  }
  // A negative number after a string flag is its value (rollback --to -2), not a flag: parseArgs calls it ambiguous.
  const args: string[] = [];
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]!;
    const next = argv[i + 1];
    const takesValue = a.startsWith('--') && !a.includes('=') && options[a.slice(2)]?.type === 'string';
    if (takesValue && next !== undefined && /^-\d+$/.test(next)) args.push(`${a}=${argv[++i]}`);
    else args.push(a);
  }
  try {
    const { values, positionals } = parseArgs({ args, options, strict: true, allowPositionals: Boolean(spec.positionals) });
    return { values: values as Values, positionals };
  } catch (err) {
    throw new UsageError(`${(err as Error).message.split('\n')[0]} (see ${spec.name} --help)`);
  }
}

export interface ScriptContext {
  values: Values;
  positionals: string[];
  out: Output;
  /** Aborted on SIGINT/SIGTERM: long steps stop, `finally` blocks still run. */
  signal: AbortSignal;
  dryRun: boolean;
  yes: boolean;
}

export interface ScriptIO {
  stdout?: NodeJS.WritableStream & { isTTY?: boolean };
  stderr?: NodeJS.WritableStream & { isTTY?: boolean };
  env?: NodeJS.ProcessEnv;
}

/**
 * Parse flags, build the output, run the body, and turn any error into its exit code.
 * Never calls process.exit: the caller decides what to do with the code.
 */
export async function runScript(
  spec: CommandSpec,
  argv: string[],
  body: (ctx: ScriptContext) => Promise<number | void>,
  io: ScriptIO = {},
): Promise<number> {
  const stderr = io.stderr ?? process.stderr;
  let parsed: Parsed;
  try {
    parsed = parseCommand(spec, argv);
  } catch (err) {
    const message = `${spec.name}: ${(err as Error).message}`;
    stderr.write(`${message}\n`);
    // --json promises one document on stdout, a flag error included (when --json itself was read).
    if (argv.includes('--json')) (io.stdout ?? process.stdout).write(`${JSON.stringify({ ok: false, exitCode: EXIT.usage, error: message, details: [] })}\n`);
    return EXIT.usage;
  }
  if (parsed.values.help) {
    (io.stdout ?? process.stdout).write(helpText(spec));
    return EXIT.ok;
  }
  const out = new Output({ json: Boolean(parsed.values.json), verbose: Boolean(parsed.values.verbose), dryRun: Boolean(parsed.values['dry-run']), ...io });
  const controller = new AbortController();
  let signals = 0;
  const onSignal = (sig: NodeJS.Signals) => {
    signals++;
    if (signals > 1) {
      // A second Ctrl-C means "now": the default handler is already gone, so say why we stop. No async cleanup runs;
      // only synchronous 'exit' listeners do (the demo stops its throwaway PostgreSQL there).
      const killed = killInterruptibleChildren();
      stderr.write(`${spec.name}: second ${sig}, exiting without cleanup${killed ? ` (killed ${killed === 1 ? 'a command' : `${killed} commands`} still running)` : ''}\n`);
      process.exit(sig === 'SIGINT' ? 130 : 143);
    }
    out.warn(`${sig} received: stopping after cleanup (press again to exit at once)`);
    controller.abort(new OpsError(`interrupted by ${sig}`, EXIT.failed));
  };
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);
  try {
    const code = await body({
      values: parsed.values,
      positionals: parsed.positionals,
      out,
      signal: controller.signal,
      dryRun: Boolean(parsed.values['dry-run']),
      yes: Boolean(parsed.values.yes),
    });
    return code ?? EXIT.ok;
  } catch (err) {
    const code = exitCodeOf(err);
    const message = err instanceof Error ? err.message : String(err);
    const details = err instanceof OpsError ? err.details : [];
    out.error(message);
    for (const d of details) out.error(`  ${d}`);
    if (!(err instanceof OpsError) && out.verbose && err instanceof Error && err.stack) out.detail(err.stack);
    out.result({ ok: false, exitCode: code, error: message, details });
    return code;
  } finally {
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
    // Interrupted: every step has given up on its commands and cleaned up. One still running ignored the SIGTERM it
    // got; it would keep this process alive (and a second Ctrl-C would then find no handler) or outlive it.
    if (controller.signal.aborted) killInterruptibleChildren();
  }
}

/** True when `metaUrl` is the file node was asked to run (so importing a script for its spec runs nothing). */
export function isEntryPoint(metaUrl: string): boolean {
  const entry = process.argv[1];
  if (!entry) return false;
  try {
    return realpathSync(entry) === realpathSync(fileURLToPath(metaUrl));
  } catch {
    return false;
  }
}

/** Wire a script's main(argv) to the process: the only place that sets the exit code. */
export function startIfEntry(metaUrl: string, main: (argv: string[]) => Promise<number>): void {
  if (!isEntryPoint(metaUrl)) return;
  main(process.argv.slice(2)).then(
    (code) => {
      process.exitCode = code;
    },
    (err) => {
      process.stderr.write(`${err instanceof Error ? err.stack : String(err)}\n`);
      process.exitCode = EXIT.failed;
    },
  );
}
