// System tools: is one on PATH; for tests, a skip reason on a laptop and a failure under CI (CI installs everything).
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';

export function hasTool(name: string): boolean {
  if (name.includes('/')) return existsSync(name);
  return spawnSync('sh', ['-c', 'command -v "$1"', 'sh', name], { stdio: 'ignore' }).status === 0;
}

/**
 * The skip reason for `test(name, { skip: requireTools([...]) }, fn)`, or undefined when all are present.
 * With CI set, a missing tool throws: the suite fails instead of counting a skip as a pass.
 */
export function requireTools(names: string[]): string | undefined {
  const missing = names.filter((n) => !hasTool(n));
  if (missing.length === 0) return undefined;
  const reason = `missing system tool(s): ${missing.join(', ')} (bash .ci/run installs them)`;
  if (process.env.CI) throw new Error(`CI: ${reason}`);
  return reason;
}
