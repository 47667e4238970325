// Probing something that may still be starting: one attempt at a time, "not yet" retried with backoff until a
// deadline, "broken" reported at once. Used by smoke; the clock is passed in so the policy is testable.

export type Attempt =
  | { state: 'ok'; note?: string; data?: unknown }
  /** wait: not there yet (starting, connection refused): worth another try before the deadline. */
  | { state: 'wait' | 'fail'; reason: string; data?: unknown };

export interface Probe {
  name: string;
  label: string;
  /** One try. May throw: transient network errors count as "wait", anything else as "fail". */
  attempt(signal: AbortSignal): Promise<Attempt>;
  /** Where an attempt got to (e.g. "tools/list page 2"): named when it times out. */
  progress?(): string;
}

export interface ProbeReport {
  name: string;
  label: string;
  status: 'ok' | 'fail';
  attempts: number;
  /** Duration of the last attempt: the latency of the answer that decided. */
  latencyMs: number;
  /** From the first attempt to the verdict, waits included. */
  elapsedMs: number;
  note?: string;
  error?: string;
  data?: unknown;
}

export interface Clock {
  now(): number;
  sleep(ms: number, signal: AbortSignal): Promise<void>;
}

export const realClock: Clock = {
  now: () => performance.now(),
  sleep: (ms, signal) =>
    new Promise((resolve, reject) => {
      if (signal.aborted) return reject(signal.reason);
      const t = setTimeout(() => {
        signal.removeEventListener('abort', onAbort);
        resolve();
      }, ms);
      const onAbort = () => {
        clearTimeout(t);
        reject(signal.reason);
      };
      signal.addEventListener('abort', onAbort, { once: true });
    }),
};

/** 250 ms, 500 ms, 1 s, 2 s, 4 s, then every 5 s: quick while things come up, calm when they take long. */
export function backoffMs(failedAttempts: number): number {
  return Math.min(5000, 250 * 2 ** Math.max(0, failedAttempts - 1));
}

const TRANSIENT_CODES = new Set([
  'ECONNREFUSED',
  'ECONNRESET',
  'EPIPE',
  'ECONNABORTED',
  'ETIMEDOUT',
  'EAI_AGAIN',
  'UND_ERR_SOCKET',
  'UND_ERR_CONNECT_TIMEOUT',
  'UND_ERR_HEADERS_TIMEOUT',
  'UND_ERR_CLOSED',
]);

function causes(err: unknown): unknown[] {
  const chain: unknown[] = [];
  let e: unknown = err;
  while (e && chain.length < 5) {
    chain.push(e);
    e = (e as { cause?: unknown }).cause;
  }
  return chain;
}

/** Connection refused or reset while containers (re)start: "not yet", not a failure. */
export function isTransient(err: unknown): boolean {
  return causes(err).some((e) => {
    const code = (e as { code?: unknown }).code;
    if (typeof code === 'string' && TRANSIENT_CODES.has(code)) return true;
    return e instanceof Error && /socket hang up|other side closed/i.test(e.message);
  });
}

/** The most specific message of an error chain: "connect ECONNREFUSED 127.0.0.1:80" rather than "fetch failed". */
export function describeError(err: unknown): string {
  const chain = causes(err);
  const last = chain[chain.length - 1];
  const first = chain[0];
  const msg = (e: unknown) => (e instanceof Error ? e.message : String(e));
  // One line: an OpenSSL message ends in a newline, and the output is one line per step.
  const line = (text: string) => text.split('\n').map((l) => l.trim()).find(Boolean) ?? '';
  if (chain.length > 1 && first instanceof Error && /^fetch failed$/i.test(first.message)) return line(msg(last));
  return line(msg(first));
}

/** Resolves when the signal aborts: so an attempt that ignores its signal still cannot hang the run. */
function whenAborted(signal: AbortSignal): Promise<never> {
  return new Promise((_, reject) => {
    if (signal.aborted) reject(signal.reason);
    else signal.addEventListener('abort', () => reject(signal.reason), { once: true });
  });
}

export async function attemptOnce(probe: Probe, budgetMs: number, outer: AbortSignal): Promise<Attempt> {
  const timeout = AbortSignal.timeout(Math.max(1, Math.round(budgetMs)));
  const signal = AbortSignal.any([outer, timeout]);
  try {
    return await Promise.race([probe.attempt(signal), whenAborted(signal)]);
  } catch (err) {
    if (outer.aborted) throw outer.reason;
    if (timeout.aborted) {
      const at = probe.progress?.();
      return { state: 'wait', reason: `no answer within ${formatSeconds(budgetMs)}${at ? ` (at ${at})` : ''}` };
    }
    return { state: isTransient(err) ? 'wait' : 'fail', reason: describeError(err) };
  }
}

function formatSeconds(ms: number): string {
  return ms < 1000 ? `${Math.round(ms)} ms` : `${(ms / 1000).toFixed(1)} s`;
}

export interface ProbeOptions {
  /** Absolute time (clock.now() scale) by which the probe must have passed. */
  deadline: number;
  /** Upper bound of one attempt. */
  attemptTimeoutMs: number;
  /** false: one attempt only (a diagnostic look after an earlier failure). */
  retry: boolean;
  signal: AbortSignal;
  clock?: Clock;
  /** Told about every "not yet" (for progress lines). */
  onWait?: (reason: string, attempt: number) => void;
}

const MIN_ATTEMPT_MS = 1000;

/** Try until ok, a definite failure, or the deadline (the last try may overrun it by up to 1 s); the report names the last reason. */
export async function runProbe(probe: Probe, opts: ProbeOptions): Promise<ProbeReport> {
  const clock = opts.clock ?? realClock;
  const started = clock.now();
  let attempts = 0;
  for (;;) {
    attempts++;
    const t0 = clock.now();
    // At least MIN_ATTEMPT_MS even near the deadline: a last try cut to a few ms would only report its own timeout.
    const budget = Math.max(Math.min(MIN_ATTEMPT_MS, opts.attemptTimeoutMs), Math.min(opts.attemptTimeoutMs, opts.deadline - t0));
    const a = await attemptOnce(probe, budget, opts.signal);
    const t1 = clock.now();
    const base = { name: probe.name, label: probe.label, attempts, latencyMs: t1 - t0, elapsedMs: t1 - started, data: a.data };
    if (a.state === 'ok') return { ...base, status: 'ok', note: a.note };
    if (a.state === 'fail') return { ...base, status: 'fail', error: a.reason };
    const delay = backoffMs(attempts);
    if (!opts.retry) return { ...base, status: 'fail', error: a.reason };
    if (t1 + delay >= opts.deadline) return { ...base, status: 'fail', error: `not ready by the deadline: ${a.reason}` };
    opts.onWait?.(a.reason, attempts);
    await clock.sleep(delay, opts.signal);
  }
}

export interface HttpAnswer {
  status: number;
  contentType: string;
  /** The Location header of a redirect, "" otherwise. */
  location: string;
  body: string;
  /** The body was longer than maxBytes: `body` holds its start only. */
  truncated: boolean;
}

/** GET a URL; the body is read up to `maxBytes` (a health page, never bulk data). */
export async function httpGet(url: string, opts: { signal: AbortSignal; headers?: Record<string, string>; maxBytes?: number }): Promise<HttpAnswer> {
  const res = await fetch(url, { signal: opts.signal, headers: opts.headers, redirect: 'manual' });
  const max = opts.maxBytes ?? 1024 * 1024;
  let body = '';
  let truncated = false;
  if (res.body) {
    const decoder = new TextDecoder();
    let size = 0;
    for await (const chunk of res.body as AsyncIterable<Uint8Array>) {
      size += chunk.byteLength;
      body += decoder.decode(chunk, { stream: true });
      if (size > max) {
        truncated = true;
        break;
      }
    }
  }
  return { status: res.status, contentType: res.headers.get('content-type') ?? '', location: res.headers.get('location') ?? '', body, truncated };
}

/** Gateway errors while an upstream (re)starts are "not yet"; other statuses are answers. */
export function isGatewayWait(status: number): boolean {
  return status === 502 || status === 503 || status === 504;
}
