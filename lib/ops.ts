// The set-up every script that reads the config shares: load it, teach the redactor its secrets, build the runner.
import { statSync } from 'node:fs';
import type { ScriptContext } from './cli.ts';
import { UsageError } from './errors.ts';
import { loadConfig, need, type LoadedConfig } from './config.ts';
import { Runner } from './run.ts';
import { composeSettings } from './sources/index.ts';
import type { SourceContext } from './sources/types.ts';

export interface Ops {
  loaded: LoadedConfig;
  runner: Runner;
  sourceContext: SourceContext;
}

export function setUp(ctx: ScriptContext, opts: { dryRun?: boolean } = {}): Ops {
  const loaded = loadConfig({
    configPath: ctx.values.config as string | undefined,
    envFile: ctx.values.dotenv as string | undefined,
  });
  for (const s of loaded.secrets) ctx.out.redactor.add(s);
  const runner = new Runner({ out: ctx.out, dryRun: opts.dryRun ?? ctx.dryRun, signal: ctx.signal });
  const sourceContext: SourceContext = { runner, out: ctx.out, config: loaded.config, compose: composeSettings(loaded), signal: ctx.signal };
  ctx.out.detail(`config: ${loaded.path}`);
  return { loaded, runner, sourceContext };
}

/** backup.root: a directory, or a path not there yet (the first backup creates it); anything else is exit 2. */
export function backupRoot(loaded: LoadedConfig): string {
  const root = need(loaded.config.backup, 'backup.root', 'for backup sets').root;
  let st;
  try {
    st = statSync(root);
  } catch {
    return root; // missing (created by the first backup, "no sets" for the rest) or unreadable (each script says)
  }
  if (!st.isDirectory()) throw new UsageError(`invalid config: backup.root: ${root} is not a directory`);
  return root;
}
