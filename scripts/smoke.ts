// smoke: after a deploy, checks every hop of the request path in order and names the first broken one.
// Example: npx tsx scripts/smoke.ts --timeout 180s
import { runScript, startIfEntry, type CommandSpec } from '../lib/cli.ts';
import { setUp } from '../lib/ops.ts';
import { EXIT } from '../lib/errors.ts';
import { formatDuration } from '../lib/output.ts';
import { realClock, runProbe, type ProbeReport } from '../lib/probe.ts';
import { smokeProbes, smokeSettings, DEFAULT_TIMEOUT } from '../lib/smoke.ts';

export const spec: CommandSpec = {
  name: 'smoke',
  summary: 'after a deploy: compose state, frontend and MCP through the reverse proxy, and each store directly',
  examples: ['npx tsx scripts/smoke.ts', 'npx tsx scripts/smoke.ts --timeout 180s', 'npx tsx scripts/smoke.ts --timeout 30s --json'],
  mutating: false,
  flags: {
    timeout: {
      type: 'string',
      value: 'DURATION',
      description: `overall deadline, e.g. 90s, 3m, or seconds (default smoke.timeout or ${DEFAULT_TIMEOUT})`,
    },
  },
  notes: [
    'Hops, in order: compose services (running + healthy, one-shots exited 0); frontend through the proxy; MCP /readyz',
    'through the proxy (schemas/readiness.schema.json); MCP initialize + tools/list; each configured store directly.',
    'Connection refused/reset, 502-504 and a failing readiness check are "not yet" and retried until the deadline.',
    'Exit 1 names the first broken hop; the hops after it are looked at once, for diagnosis. Config: smoke: in ops.config.yaml.',
  ],
};

/** One look at each hop after the first failure: enough to diagnose, short enough not to hold a 3 a.m. operator. */
const DIAGNOSTIC_MS = 5000;
/** One attempt never takes longer than this, however far away the deadline is. */
const ATTEMPT_MS = 15_000;

function line(r: ProbeReport, i: number, n: number): string {
  const timing = [`${formatDuration(r.latencyMs)}`, ...(r.attempts > 1 ? [`${r.attempts} attempts in ${formatDuration(r.elapsedMs)}`] : [])].join(', ');
  return `hop ${i + 1}/${n} ${r.label}: ${r.status === 'ok' ? r.note ?? 'ok' : r.error} (${timing})`;
}

export function main(argv: string[]): Promise<number> {
  return runScript(spec, argv, async (ctx) => {
    const { loaded, runner, sourceContext } = setUp(ctx);
    const out = ctx.out;
    const settings = smokeSettings(loaded, ctx.values.timeout as string | undefined);
    const probes = smokeProbes(loaded, runner, sourceContext.compose, settings);
    if (settings.mcpToken) out.redactor.add(settings.mcpToken);
    const started = realClock.now();
    const deadline = started + settings.timeoutMs;
    out.info(`smoke: ${probes.length} hops via ${settings.url}, deadline ${formatDuration(settings.timeoutMs)}`);
    const reports: ProbeReport[] = [];
    let failed: { index: number; report: ProbeReport } | undefined;
    for (const [i, probe] of probes.entries()) {
      if (failed && i === failed.index + 1) out.info('after the failure, one look at the remaining hops:');
      let told = false;
      const report = await runProbe(probe, {
        deadline: failed ? realClock.now() + DIAGNOSTIC_MS : deadline,
        attemptTimeoutMs: failed ? DIAGNOSTIC_MS : ATTEMPT_MS,
        retry: !failed,
        signal: ctx.signal,
        onWait: (reason, attempt) => {
          if (!told) out.info(`waiting for ${probe.label}: ${reason}`);
          else out.detail(`attempt ${attempt}: ${reason}`);
          told = true;
        },
      });
      reports.push(report);
      const text = line(report, i, probes.length);
      if (report.status === 'fail') out.error(text);
      else if (report.note?.startsWith('warn')) out.warn(text);
      else out.ok(text);
      if (report.status === 'fail' && !failed) failed = { index: i, report };
    }
    const elapsedMs = realClock.now() - started;
    const readiness = reports.find((r) => r.name === 'mcp-readiness')?.data ?? null;
    ctx.out.result({
      ok: !failed,
      exitCode: failed ? EXIT.failed : EXIT.ok,
      url: settings.url,
      timeoutMs: settings.timeoutMs,
      elapsedMs: Math.round(elapsedMs),
      failedHop: failed ? { hop: failed.index + 1, name: failed.report.name, label: failed.report.label, error: failed.report.error } : null,
      hops: reports.map((r, i) => ({
        hop: i + 1,
        name: r.name,
        label: r.label,
        status: r.status,
        afterFailure: failed !== undefined && i > failed.index,
        latencyMs: Math.round(r.latencyMs),
        attempts: r.attempts,
        elapsedMs: Math.round(r.elapsedMs),
        ...(r.note ? { note: r.note } : {}),
        ...(r.error ? { error: r.error } : {}),
      })),
      readiness,
    });
    if (failed) {
      out.error(`smoke failed at hop ${failed.index + 1}/${probes.length} (${failed.report.name}): ${failed.report.error}`);
      return EXIT.failed;
    }
    out.ok(`smoke passed: ${probes.length} hops in ${formatDuration(elapsedMs)}`);
    return EXIT.ok;
  });
}

startIfEntry(import.meta.url, main);
