// lib/probe.ts: "not yet" is retried with backoff until the deadline, a definite failure is reported at once,
// and the error classes that count as "not yet" (connection refused/reset) are the ones a starting container gives.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createServer } from 'node:net';
import { backoffMs, describeError, isTransient, runProbe, type Attempt, type Clock, type Probe } from '../lib/probe.ts';
import { freePort } from '../lib/pg-sandbox.ts';

/** A clock that only moves when the probe sleeps (or an attempt says it took time). */
function fakeClock(): Clock & { sleeps: number[]; t: number } {
  const c = {
    t: 0,
    sleeps: [] as number[],
    now: () => c.t,
    sleep: async (ms: number) => {
      c.sleeps.push(ms);
      c.t += ms;
    },
  };
  return c;
}

function scripted(answers: Attempt[]): Probe & { calls: number } {
  const p = {
    name: 'x',
    label: 'x hop',
    calls: 0,
    async attempt(): Promise<Attempt> {
      const a = answers[Math.min(p.calls, answers.length - 1)]!;
      p.calls++;
      return a;
    },
  };
  return p;
}

const opts = (clock: Clock, deadline: number) => ({ deadline, attemptTimeoutMs: 10_000, retry: true, signal: new AbortController().signal, clock });

test('backoff doubles from 250 ms and levels off at 5 s', () => {
  assert.deepEqual([1, 2, 3, 4, 5, 6, 7, 20].map(backoffMs), [250, 500, 1000, 2000, 4000, 5000, 5000, 5000]);
});

test('"not yet" is retried until it passes; the report counts attempts', async () => {
  const clock = fakeClock();
  const probe = scripted([{ state: 'wait', reason: 'starting' }, { state: 'wait', reason: 'starting' }, { state: 'ok', note: 'fine' }]);
  const r = await runProbe(probe, opts(clock, 60_000));
  assert.equal(r.status, 'ok');
  assert.equal(r.note, 'fine');
  assert.equal(r.attempts, 3);
  assert.deepEqual(clock.sleeps, [250, 500]);
});

test('"not yet" until the deadline fails with the last reason; it never sleeps past the deadline', async () => {
  const clock = fakeClock();
  const probe = scripted([{ state: 'wait', reason: 'mcp running, starting' }]);
  const r = await runProbe(probe, opts(clock, 10_000));
  assert.equal(r.status, 'fail');
  assert.equal(r.error, 'not ready by the deadline: mcp running, starting');
  assert.ok(clock.t <= 10_000, `slept until ${clock.t}`);
  assert.deepEqual(clock.sleeps, [250, 500, 1000, 2000, 4000]);
});

test('a definite failure is reported at the first attempt, without waiting', async () => {
  const clock = fakeClock();
  const probe = scripted([{ state: 'fail', reason: 'migrations exited 1' }]);
  const r = await runProbe(probe, opts(clock, 60_000));
  assert.deepEqual([r.status, r.error, r.attempts, clock.sleeps.length], ['fail', 'migrations exited 1', 1, 0]);
});

test('retry: false (a diagnostic look) makes one attempt only', async () => {
  const clock = fakeClock();
  const probe = scripted([{ state: 'wait', reason: 'HTTP 502' }]);
  const r = await runProbe(probe, { ...opts(clock, 60_000), retry: false });
  assert.deepEqual([r.status, r.error, probe.calls], ['fail', 'HTTP 502', 1]);
});

test('thrown errors: connection refused is "not yet", anything else a failure', async () => {
  const port = await freePort();
  const refused = await fetch(`http://127.0.0.1:${port}/`).catch((e: unknown) => e);
  assert.ok(isTransient(refused), 'fetch to a closed port');
  assert.match(describeError(refused), /ECONNREFUSED 127\.0\.0\.1/);
  assert.equal(isTransient(new Error('tools/list lacks x')), false);
  assert.equal(isTransient(new TypeError('Invalid URL')), false);

  const clock = fakeClock();
  let n = 0;
  const probe: Probe = {
    name: 'p',
    label: 'p',
    attempt: async () => {
      n++;
      if (n === 1) throw refused;
      throw new Error('HTTP 404 from the wrong service');
    },
  };
  const r = await runProbe(probe, opts(clock, 60_000));
  assert.deepEqual([r.status, r.error, r.attempts], ['fail', 'HTTP 404 from the wrong service', 2]);
});

test('a connection reset by the server is "not yet"', async () => {
  const server = createServer((s) => s.resetAndDestroy());
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  try {
    const port = (server.address() as { port: number }).port;
    const err = await fetch(`http://127.0.0.1:${port}/`).catch((e: unknown) => e);
    assert.ok(isTransient(err), describeError(err));
  } finally {
    server.close();
  }
});

test('an attempt that hangs is cut off at its budget and counts as "not yet"', async () => {
  const probe: Probe = { name: 'h', label: 'h', attempt: () => new Promise(() => {}) };
  const r = await runProbe(probe, { deadline: performance.now() + 1200, attemptTimeoutMs: 1000, retry: false, signal: new AbortController().signal });
  assert.equal(r.status, 'fail');
  assert.match(r.error!, /no answer within 1\.0 s/);
});
