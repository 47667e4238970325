// healthchecks.io-style pings (start / success / failure). A short timeout, and never an error: monitoring must
// not be the reason a backup fails.
import { parseDuration } from './duration.ts';
import type { Output } from './output.ts';

export interface PingConfig {
  start?: string;
  success?: string;
  failure?: string;
  timeout?: string;
}

export async function ping(cfg: PingConfig | undefined, event: 'start' | 'success' | 'failure', out: Output): Promise<boolean> {
  const url = cfg?.[event];
  if (!url) return false;
  const timeout = cfg?.timeout ? parseDuration(cfg.timeout) : 5000;
  try {
    const res = await fetch(url, { method: 'POST', signal: AbortSignal.timeout(timeout), body: event });
    if (!res.ok) out.warn(`monitoring ping (${event}) answered HTTP ${res.status}`);
    return res.ok;
  } catch (err) {
    out.warn(`monitoring ping (${event}) failed: ${(err as Error).message}`);
    return false;
  }
}
