// The hops of the deploy smoke check, in request-path order: compose state, then through the reverse proxy
// (frontend, MCP readiness, MCP initialize + tools/list), then each store directly. Settings come from `smoke:`.
import { readFileSync } from 'node:fs';
import { parse as parseYaml } from 'yaml';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StreamableHTTPClientTransport, StreamableHTTPError } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import { ListBucketsCommand, S3Client } from '@aws-sdk/client-s3';
import type { LoadedConfig } from './config.ts';
import { UsageError } from './errors.ts';
import { parseDuration } from './duration.ts';
import { composeArgv, type ComposeSettings, type Runner } from './run.ts';
import { judgeServices, parseComposePs } from './compose-ps.ts';
import { contractErrors, readinessErrors, summarizeChecks, type Readiness } from './readiness.ts';
import { describeError, httpGet, isGatewayWait, isTransient, type Attempt, type Probe } from './probe.ts';
import { conninfoDb, pgEndpoint } from './sources/postgres.ts';
import { toolVersion } from './backup-set.ts';

export type StoreName = 'postgres' | 'qdrant' | 's3' | 'neo4j';
const STORES: StoreName[] = ['postgres', 'qdrant', 's3', 'neo4j'];

export interface SmokeSettings {
  url: string;
  frontendPath: string;
  frontendMarker?: string;
  mcpPath: string;
  readinessPath: string;
  mcpToken?: string;
  tools: string[];
  services: string[];
  oneShots: string[];
  stores: StoreName[];
  s3Check: 'minio-health' | 'list-buckets';
  timeoutMs: number;
}

export const DEFAULT_TIMEOUT = '120s';

/** --timeout: "90s", "2m", or plain seconds. */
export function parseTimeout(text: string, where: string): number {
  const t = text.trim();
  let ms: number;
  try {
    ms = /^[0-9]+$/.test(t) ? Number(t) * 1000 : parseDuration(t);
  } catch {
    throw new UsageError(`${where}: not a duration: "${text}" (examples: 120s, 2m, 90)`);
  }
  if (ms <= 0) throw new UsageError(`${where}: must be more than zero`);
  return ms;
}

/**
 * Service names of the compose files, minus those behind a profile (not started by a plain `up`). Files merge as
 * Compose merges them: a later file's `profiles` replaces an earlier one's; `<<` merge keys count.
 */
export function composeServiceNames(yamlTexts: string[]): string[] {
  const profiles = new Map<string, unknown[]>();
  for (const text of yamlTexts) {
    const doc = parseYaml(text, { merge: true }) as { services?: Record<string, { profiles?: unknown } | null> } | null;
    for (const [name, svc] of Object.entries(doc?.services ?? {})) {
      const own = svc && Array.isArray(svc.profiles) ? svc.profiles : undefined;
      profiles.set(name, own ?? profiles.get(name) ?? []);
    }
  }
  return [...profiles].filter(([, p]) => p.length === 0).map(([name]) => name);
}

export function smokeSettings(loaded: LoadedConfig, timeoutFlag?: string): SmokeSettings {
  const s = loaded.config.smoke ?? {};
  const sources = loaded.config.sources ?? {};
  const oneShots = [...(s.oneShots ?? ['migrations'])];
  let services: string[];
  if (s.services) {
    services = [...s.services];
  } else {
    const files = loaded.config.compose?.files ?? [];
    const texts = files.map((f) => {
      try {
        return readFileSync(f, 'utf8');
      } catch (err) {
        throw new UsageError(`compose.files: cannot read ${f}: ${(err as Error).message}`);
      }
    });
    services = composeServiceNames(texts).filter((n) => !oneShots.includes(n));
  }
  const configured = STORES.filter((n) => sources[n] !== undefined);
  const stores = s.stores ? [...s.stores] : configured;
  const missing = stores.filter((n) => !configured.includes(n));
  if (missing.length) throw new UsageError(`invalid config ${loaded.path}: smoke.stores: ${missing.join(', ')} not configured under sources`);
  return {
    url: (s.url ?? 'http://127.0.0.1').replace(/\/+$/, ''),
    frontendPath: s.frontendPath ?? '/',
    frontendMarker: s.frontendMarker,
    mcpPath: s.mcpPath ?? '/mcp',
    readinessPath: s.readinessPath ?? '/mcp/readyz',
    mcpToken: s.mcpToken || undefined,
    tools: [...(s.tools ?? [])],
    services,
    oneShots,
    stores,
    s3Check: s.s3Check ?? 'minio-health',
    timeoutMs: timeoutFlag !== undefined ? parseTimeout(timeoutFlag, '--timeout') : parseTimeout(s.timeout ?? DEFAULT_TIMEOUT, 'smoke.timeout'),
  };
}

const snippet = (text: string, max = 120) => text.replace(/\s+/g, ' ').trim().slice(0, max);

function composeProbe(runner: Runner, compose: ComposeSettings, s: SmokeSettings): Probe {
  const argv = composeArgv(compose, ['ps', '-a', '--format', 'json']);
  return {
    name: 'compose',
    label: 'compose services',
    async attempt(signal) {
      // The attempt's deadline stops a hung docker too: it must not outlive the run, nor pile up one per retry.
      const r = await runner.capture({ argv }, { readOnly: true, allowFailure: true, signal });
      if (r.code !== 0) return { state: 'fail', reason: `${argv.slice(0, 2).join(' ')} ps exited ${r.code}: ${snippet(r.stderr)}` };
      // Not the containers of `docker compose run` (ps -a lists them): they are not the stack.
      const containers = parseComposePs(r.stdout).filter((c) => !c.OneOff);
      if (containers.length === 0) {
        return { state: 'wait', reason: `no containers in project ${compose.projectName ?? '(default)'}: is the stack up (compose up -d --wait), is compose.projectName right?` };
      }
      const verdicts = judgeServices(containers, { services: s.services, oneShots: s.oneShots });
      const list = (v: 'fail' | 'wait') =>
        verdicts
          .filter((x) => x.verdict === v)
          .map((x) => `${x.service} ${x.reason}`)
          .join(', ');
      if (verdicts.some((v) => v.verdict === 'fail')) return { state: 'fail', reason: list('fail'), data: verdicts };
      if (verdicts.some((v) => v.verdict === 'wait')) return { state: 'wait', reason: list('wait'), data: verdicts };
      const done = s.oneShots.map((n) => `${n} exited 0`);
      return { state: 'ok', note: [`${s.services.length} running and healthy`, ...done].join(', '), data: verdicts };
    },
  };
}

/** A status that is not the expected answer: gateway errors are "not yet", a redirect says where to. */
function unexpectedStatus(what: string, a: { status: number; location: string; body: string }): Attempt {
  if (isGatewayWait(a.status)) return { state: 'wait', reason: `${what}: HTTP ${a.status}` };
  if (a.status >= 300 && a.status < 400) return { state: 'fail', reason: `${what}: HTTP ${a.status} redirect to ${a.location} (set smoke.url to the address clients use)` };
  return { state: 'fail', reason: `${what}: HTTP ${a.status} ${snippet(a.body)}` };
}

function frontendProbe(s: SmokeSettings): Probe {
  const url = s.url + s.frontendPath;
  return {
    name: 'frontend',
    label: `frontend through the proxy (GET ${url})`,
    async attempt(signal) {
      const a = await httpGet(url, { signal, headers: { accept: 'text/html,*/*' } });
      if (a.status !== 200) return unexpectedStatus(url, a);
      if (s.frontendMarker && !a.body.includes(s.frontendMarker)) {
        return { state: 'fail', reason: `${url}: HTTP 200 but the page lacks the marker "${s.frontendMarker}" (another app answering?)` };
      }
      return { state: 'ok', note: s.frontendMarker ? 'HTTP 200, marker found' : 'HTTP 200' };
    },
  };
}

export function readinessProbe(s: SmokeSettings): Probe {
  const url = s.url + s.readinessPath;
  return {
    name: 'mcp-readiness',
    label: `MCP readiness through the proxy (GET ${url})`,
    async attempt(signal) {
      const a = await httpGet(url, { signal, headers: { accept: 'application/json' } });
      if (a.truncated) return { state: 'fail', reason: `${url}: HTTP ${a.status}, a body over 1 MiB: not a readiness document` };
      let doc: unknown;
      try {
        doc = JSON.parse(a.body);
      } catch {
        // A proxy's own 502/503 page while mcp starts has no JSON body.
        if (isGatewayWait(a.status)) return { state: 'wait', reason: `${url}: HTTP ${a.status} without a readiness document` };
        if (a.status !== 200) return unexpectedStatus(url, a);
        return { state: 'fail', reason: `${url}: HTTP 200 but not JSON (${a.contentType || 'no content type'}): ${snippet(a.body)}` };
      }
      const schemaErrors = readinessErrors(doc);
      if (schemaErrors.length) {
        // Not a readiness document: a gateway's own JSON error while mcp starts (502-504 alike) is "not yet".
        if (a.status !== 200) return unexpectedStatus(url, a);
        return { state: 'fail', reason: `${url}: HTTP ${a.status}, does not match schemas/readiness.schema.json: ${schemaErrors.slice(0, 3).join('; ')}`, data: doc };
      }
      const ready = doc as Readiness;
      const broken = contractErrors(a.status, ready);
      if (broken.length) return { state: 'fail', reason: `${url}: breaks the readiness contract: ${broken.join('; ')}`, data: ready };
      // A failing dependency may still be coming up: the deadline decides.
      if (ready.status === 'fail') return { state: 'wait', reason: `readiness fail (HTTP ${a.status}): ${summarizeChecks(ready)}`, data: ready };
      return { state: 'ok', note: ready.status === 'warn' ? `warn: ${summarizeChecks(ready)}` : 'pass', data: ready };
    },
  };
}

/** Our own retry loop decides: gateway errors from the proxy are "not yet", other HTTP errors are answers. */
function mcpErrorAttempt(err: unknown): Attempt {
  // The SDK's code is the HTTP status; -1 and the like are its own protocol errors (an unexpected content type).
  if (err instanceof StreamableHTTPError && err.code !== undefined && err.code >= 100) {
    return { state: isGatewayWait(err.code) ? 'wait' : 'fail', reason: `HTTP ${err.code}: ${snippet(err.message, 240)}` };
  }
  if (err instanceof StreamableHTTPError) return { state: 'fail', reason: `not an MCP answer: ${snippet(err.message, 240)}` };
  if (isTransient(err)) throw err;
  return { state: 'fail', reason: snippet(describeError(err)) };
}

/** More pages than any real tool list has: a server paging without end is a fault, not a slow answer. */
const MAX_TOOL_PAGES = 1000;

export function mcpProbe(s: SmokeSettings): Probe {
  const url = s.url + s.mcpPath;
  /** Where the current attempt is, for a timeout's message: initialize, or which tools/list page. */
  let stage = 'initialize';
  return {
    name: 'mcp-tools',
    label: `MCP initialize + tools/list (${url})`,
    progress: () => stage,
    async attempt(signal) {
      stage = 'initialize';
      const client = new Client({ name: 'llc-ops-smoke', version: toolVersion() });
      const headers: Record<string, string> = s.mcpToken ? { authorization: `Bearer ${s.mcpToken}` } : {};
      const transport = new StreamableHTTPClientTransport(new URL(url), { requestInit: { headers } });
      try {
        await client.connect(transport, { signal });
        stage = 'tools/list';
        const names: string[] = [];
        const cursors = new Set<string>();
        let cursor: string | undefined;
        do {
          const page = await client.listTools(cursor ? { cursor } : undefined, { signal });
          names.push(...page.tools.map((t) => t.name));
          cursor = page.nextCursor;
          // A cursor that comes back would page for ever: an answer, and a wrong one.
          if (cursor !== undefined && cursors.has(cursor)) return { state: 'fail', reason: `tools/list repeats its cursor ${JSON.stringify(snippet(cursor, 40))} after ${cursors.size + 1} pages` };
          if (cursor !== undefined) cursors.add(cursor);
          if (cursors.size >= MAX_TOOL_PAGES) return { state: 'fail', reason: `tools/list has more than ${MAX_TOOL_PAGES} pages` };
          stage = `tools/list page ${cursors.size + 1}`;
        } while (cursor);
        const server = client.getServerVersion();
        const missing = s.tools.filter((t) => !names.includes(t));
        if (missing.length) {
          return { state: 'fail', reason: `tools/list lacks ${missing.join(', ')}; the server lists ${names.join(', ') || 'no tools'}`, data: { tools: names } };
        }
        return { state: 'ok', note: `${server ? `${server.name} ${server.version}, ` : ''}${names.length} tools`, data: { server, tools: names } };
      } catch (err) {
        return mcpErrorAttempt(err);
      } finally {
        // DELETE the session: a smoke check every deploy must not leave sessions behind on the server.
        // Bounded: a server that hangs on DELETE must not hold the run; close() then aborts what is left.
        await Promise.race([transport.terminateSession().catch(() => {}), new Promise((r) => setTimeout(r, 2000).unref())]);
        await client.close().catch(() => {});
      }
    },
  };
}

const PG_NOT_YET = /could not connect|connection refused|starting up|shutting down|in recovery mode|server closed the connection|timeout expired|is not running|no such service|container .* (is )?(restarting|not running)/i;

function postgresProbe(loaded: LoadedConfig, runner: Runner, compose: ComposeSettings | undefined): Probe {
  const cfg = loaded.config.sources!.postgres!;
  const ep = pgEndpoint(cfg, compose);
  const db = cfg.databases[0]!;
  return {
    name: 'postgres',
    label: `postgres directly (select 1 via ${ep.where})`,
    async attempt(signal) {
      const cmd = ep.tool(['psql', '-X', '-q', '-A', '-t', '-v', 'ON_ERROR_STOP=1', '-d', conninfoDb(db)], { input: 'select 1;\n' });
      // libpq's own timeout: a server that accepts but never answers must not eat the whole deadline.
      const r = await runner.capture({ ...cmd, env: { ...cmd.env, PGCONNECT_TIMEOUT: '5' } }, { readOnly: true, allowFailure: true, signal });
      if (r.code === 0 && r.stdout.trim() === '1') return { state: 'ok', note: `database ${db} answered` };
      const why = snippet(r.stderr) || `psql exited ${r.code}, printed "${snippet(r.stdout)}"`;
      return { state: PG_NOT_YET.test(r.stderr) ? 'wait' : 'fail', reason: why };
    },
  };
}

function httpStoreProbe(name: StoreName, label: string, url: string, hint = ''): Probe {
  return {
    name,
    label: `${label} directly (GET ${url})`,
    async attempt(signal) {
      const a = await httpGet(url, { signal, headers: { accept: 'application/json' } });
      if (a.status === 200) {
        let version = '';
        try {
          version = (JSON.parse(a.body) as { neo4j_version?: string }).neo4j_version ?? '';
        } catch {
          // plain text health pages are fine
        }
        return { state: 'ok', note: version ? `HTTP 200, version ${version}` : 'HTTP 200' };
      }
      const r = unexpectedStatus(url, a);
      return r.state === 'fail' && hint ? { ...r, reason: `${r.reason}${hint}` } : r;
    },
  };
}

function s3ListProbe(loaded: LoadedConfig): Probe {
  const cfg = loaded.config.sources!.s3!;
  return {
    name: 's3',
    label: `s3 directly (ListBuckets at ${cfg.endpoint})`,
    async attempt(signal) {
      const client = new S3Client({
        endpoint: cfg.endpoint,
        region: cfg.region ?? 'us-east-1',
        forcePathStyle: cfg.forcePathStyle ?? true,
        credentials: { accessKeyId: cfg.accessKey, secretAccessKey: cfg.secretKey },
        // Our loop retries; the SDK's own retries would hide "not yet" inside one attempt.
        maxAttempts: 1,
      });
      try {
        const out = await client.send(new ListBucketsCommand({}), { abortSignal: signal });
        return { state: 'ok', note: `${out.Buckets?.length ?? 0} buckets` };
      } catch (err) {
        if (isTransient(err)) throw err;
        const status = (err as { $metadata?: { httpStatusCode?: number } }).$metadata?.httpStatusCode;
        if (status !== undefined && isGatewayWait(status)) return { state: 'wait', reason: `HTTP ${status}` };
        return { state: 'fail', reason: `${(err as Error).name}: ${snippet((err as Error).message)}` };
      } finally {
        client.destroy();
      }
    },
  };
}

function storeProbe(name: StoreName, loaded: LoadedConfig, runner: Runner, compose: ComposeSettings | undefined, s: SmokeSettings): Probe {
  const sources = loaded.config.sources!;
  const trim = (u: string) => u.replace(/\/+$/, '');
  switch (name) {
    case 'postgres':
      return postgresProbe(loaded, runner, compose);
    case 'qdrant':
      // /readyz needs no api key (DESIGN.md §6).
      return httpStoreProbe('qdrant', 'qdrant', `${trim(sources.qdrant!.url)}/readyz`);
    case 's3':
      return s.s3Check === 'list-buckets'
        ? s3ListProbe(loaded)
        : httpStoreProbe('s3', 's3', `${trim(sources.s3!.endpoint)}/minio/health/live`, ' (not MinIO? set smoke.s3Check: list-buckets)');
    case 'neo4j':
      return httpStoreProbe('neo4j', 'neo4j', `${trim(sources.neo4j!.httpUrl ?? 'http://127.0.0.1:7474')}/`);
  }
}

/** Every hop, in the order a request travels: the first one that fails is the one to fix. */
export function smokeProbes(loaded: LoadedConfig, runner: Runner, compose: ComposeSettings | undefined, s: SmokeSettings): Probe[] {
  if (!compose) throw new UsageError(`invalid config ${loaded.path}: compose: is required by smoke (it checks docker compose ps)`);
  return [
    composeProbe(runner, compose, s),
    frontendProbe(s),
    readinessProbe(s),
    mcpProbe(s),
    ...s.stores.map((n) => storeProbe(n, loaded, runner, compose, s)),
  ];
}
