// smoke against a real local stack: Caddy running compose/Caddyfile in front of a frontend server and a real MCP
// server (TypeScript SDK, Streamable HTTP) whose /readyz checks a throwaway PostgreSQL and s3rver; the docker fake
// supplies `compose ps`, and only Qdrant/Neo4j health pages are fakes. Then each hop is broken in turn.
import { describe, test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync, execFile, type ChildProcess } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync, existsSync } from 'node:fs';
import { promisify } from 'node:util';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parse as parseYaml } from 'yaml';
import { ListBucketsCommand, S3Client } from '@aws-sdk/client-s3';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import { LoggingMessageNotificationSchema } from '@modelcontextprotocol/sdk/types.js';
import { startPgSandbox, freePort, findPgBin, type PgSandbox } from '../lib/pg-sandbox.ts';
import { readinessErrors } from '../lib/readiness.ts';
import { composeServiceNames, mcpProbe, parseTimeout, readinessProbe, type SmokeSettings } from '../lib/smoke.ts';
import { attemptOnce, httpGet, describeError } from '../lib/probe.ts';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { requireTools } from './helpers/tools.ts';
import { ROOT, runScriptProcess, type ScriptRun } from './helpers/scripts.ts';
import { startCaddy, type CaddyInstance } from './helpers/caddy.ts';
import { startFrontendTestServer, type FrontendTestServer } from './helpers/frontend-test-server.ts';
import { startMcpTestServer, type McpTestServer } from './helpers/mcp-test-server.ts';
import { startStoreHealthFake, type StoreHealthFake } from './fakes/store-health-fake.ts';

const skip = requireTools(['caddy', 'psql']) ?? (findPgBin() ? undefined : 'PostgreSQL server binaries missing');
const execFileP = promisify(execFile);
const COMPOSE_FILE = join(ROOT, 'compose', 'compose.prod.yaml');
const MARKER = 'llc-frontend-marker-7f3a';
const TOOLS = ['search_documents', 'ingest_document'];
const S3_KEY = 'S3RVER'; // s3rver's built-in test credentials

interface Stack {
  dir: string;
  pg: PgSandbox;
  fake: StoreHealthFake;
  s3: { child: ChildProcess; endpoint: string };
  frontend: FrontendTestServer;
  mcp: McpTestServer;
  caddy: CaddyInstance;
  release: () => void;
}
let stack: Stack | undefined;
const cleanups: (() => Promise<void> | void)[] = [];

/** Long-running services and one-shots exactly as compose/compose.prod.yaml defines them. */
function composeServices(): { longRunning: string[]; oneShots: string[] } {
  const doc = parseYaml(readFileSync(COMPOSE_FILE, 'utf8')) as { services: Record<string, { restart?: string }> };
  const names = Object.keys(doc.services);
  return { longRunning: names.filter((n) => n !== 'migrations'), oneShots: ['migrations'] };
}

function psEntries(overrides: Record<string, Record<string, unknown>> = {}): object[] {
  const { longRunning, oneShots } = composeServices();
  const base = (service: string, oneShot: boolean) => ({
    Command: '"docker-entrypoint.sh"',
    ExitCode: 0,
    Health: oneShot ? '' : 'healthy',
    ID: service.padEnd(12, '0').slice(0, 12),
    Name: `llc-${service}-1`,
    Project: 'llc',
    Service: service,
    State: oneShot ? 'exited' : 'running',
    Status: oneShot ? 'Exited (0) 1 minute ago' : 'Up 1 minute (healthy)',
    ...overrides[service],
  });
  return [...oneShots.map((s) => base(s, true)), ...longRunning.map((s) => base(s, false))];
}

function writePs(name: string, entries: object[], shape: 'lines' | 'array'): string {
  const file = join(stack!.dir, name);
  writeFileSync(file, shape === 'lines' ? entries.map((e) => JSON.stringify(e)).join('\n') + '\n' : JSON.stringify(entries));
  return file;
}

function writeConfig(name: string, opts: { url?: string; tools?: string[]; qdrantUrl?: string; timeout?: string } = {}): string {
  const s = stack!;
  const config = {
    compose: { files: [COMPOSE_FILE], projectName: 'llc' },
    sources: {
      postgres: { via: 'local', url: s.pg.url('postgres'), password: '${SMOKE_TEST_PGPASSWORD}', databases: ['postgres'] },
      neo4j: { via: 'compose', httpUrl: s.fake.neo4jUrl },
      qdrant: { url: opts.qdrantUrl ?? s.fake.qdrantUrl },
      s3: { endpoint: s.s3.endpoint, accessKey: S3_KEY, secretKey: S3_KEY, buckets: 'all' },
    },
    smoke: {
      url: opts.url ?? s.caddy.url,
      frontendMarker: MARKER,
      tools: opts.tools ?? TOOLS,
      s3Check: 'list-buckets',
      ...(opts.timeout ? { timeout: opts.timeout } : {}),
    },
  };
  const file = join(s.dir, `${name}.yaml`);
  writeFileSync(file, JSON.stringify(config, null, 2)); // JSON is YAML
  return file;
}

async function smoke(config: string, psFile: string, args: string[]): Promise<ScriptRun & { log: string[][]; doc?: Record<string, any> }> {
  const log = join(stack!.dir, `docker-${Math.random().toString(36).slice(2)}.log`);
  const run = await runScriptProcess('smoke', ['--config', config, ...args], {
    env: {
      PATH: `${join(ROOT, 'test', 'fakes')}:${process.env.PATH}`,
      FAKE_DOCKER_LOG: log,
      FAKE_DOCKER_PS: psFile,
      SMOKE_TEST_PGPASSWORD: stack!.pg.password,
    },
  });
  const calls = existsSync(log) ? readFileSync(log, 'utf8').trim().split('\n').filter(Boolean).map((l) => JSON.parse(l) as string[]) : [];
  let doc: Record<string, any> | undefined;
  if (args.includes('--json')) {
    assert.doesNotThrow(() => (doc = JSON.parse(run.stdout)), `--json prints one JSON document; got:\n${run.stdout}\n${run.stderr}`);
  }
  return { ...run, log: calls, doc };
}

async function startS3rver(dir: string): Promise<{ child: ChildProcess; endpoint: string }> {
  const port = await freePort();
  const bin = join(ROOT, 'node_modules', 's3rver', 'bin', 's3rver.js');
  const child = spawn(process.execPath, [bin, '-d', join(dir, 's3'), '-a', '127.0.0.1', '-p', String(port), '-s', '--configure-bucket', 'llc'], { stdio: 'ignore' });
  const endpoint = `http://127.0.0.1:${port}`;
  for (let i = 0; i < 100; i++) {
    try {
      await (await fetch(endpoint)).body?.cancel();
      return { child, endpoint };
    } catch {
      await new Promise((r) => setTimeout(r, 100));
    }
  }
  child.kill();
  throw new Error('s3rver did not start');
}

describe('smoke through a real Caddy, MCP server and PostgreSQL', { skip }, () => {
  before(async () => {
    const dir = mkdtempSync(join(tmpdir(), 'llc-smoke-'));
    cleanups.push(() => rmSync(dir, { recursive: true, force: true }));
    const pg = await startPgSandbox();
    cleanups.push(() => pg.destroy());
    const fake = await startStoreHealthFake();
    cleanups.push(() => fake.close());
    const s3 = await startS3rver(dir);
    cleanups.push(() => void s3.child.kill('SIGTERM'));
    const frontend = await startFrontendTestServer(MARKER);
    cleanups.push(() => frontend.close());
    const proxyPort = await freePort();
    const s3Client = new S3Client({ endpoint: s3.endpoint, region: 'us-east-1', forcePathStyle: true, credentials: { accessKeyId: S3_KEY, secretAccessKey: S3_KEY }, maxAttempts: 1 });
    cleanups.push(() => s3Client.destroy());
    const httpCheck = (url: string) => async () => {
      const r = await fetch(url, { signal: AbortSignal.timeout(2000) });
      await r.body?.cancel();
      if (!r.ok) throw new Error(`${url}: HTTP ${r.status}`);
    };
    let release: () => void = () => {};
    const held = new Promise<void>((r) => (release = r));
    const mcp = await startMcpTestServer({
      tools: TOOLS,
      allowedHosts: [`127.0.0.1:${proxyPort}`],
      hold: () => held,
      checks: {
        // What the Python reference does: a real connection and `select 1`, password through the environment.
        postgres: async () => {
          await execFileP('psql', ['-X', '-q', '-A', '-t', '-h', '127.0.0.1', '-p', String(pg.port), '-U', pg.user, '-d', 'postgres', '-c', 'select 1'], {
            env: { ...process.env, PGPASSWORD: pg.password, PGCONNECT_TIMEOUT: '2' },
          }).catch((err: { stderr?: string }) => {
            throw new Error((err.stderr ?? String(err)).trim().split('\n')[0]);
          });
        },
        neo4j: httpCheck(`${fake.neo4jUrl}/`),
        qdrant: httpCheck(`${fake.qdrantUrl}/readyz`),
        s3: async () => {
          await s3Client.send(new ListBucketsCommand({}));
        },
      },
    });
    cleanups.push(() => mcp.close());
    const caddy = await startCaddy({ frontend: `127.0.0.1:${frontend.port}`, mcp: `127.0.0.1:${mcp.port}` }, { port: proxyPort });
    cleanups.push(() => caddy.stop());
    stack = { dir, pg, fake, s3, frontend, mcp, caddy, release };
  });

  after(async () => {
    stack?.release();
    for (const c of cleanups.reverse()) {
      try {
        await c();
      } catch {
        // keep cleaning
      }
    }
  });

  test('passes on the healthy stack (compose ps as JSON lines), through the proxy, with initialize + tools/list', async () => {
    const r = await smoke(writeConfig('healthy'), writePs('ps-lines.json', psEntries(), 'lines'), ['--json', '--timeout', '60s']);
    assert.equal(r.code, 0, r.stderr);
    const doc = r.doc!;
    assert.equal(doc.ok, true);
    assert.equal(doc.failedHop, null);
    assert.deepEqual(
      doc.hops.map((h: { name: string; status: string }) => [h.name, h.status]),
      ['compose', 'frontend', 'mcp-readiness', 'mcp-tools', 'postgres', 'qdrant', 's3', 'neo4j'].map((n) => [n, 'ok']),
    );
    for (const h of doc.hops) assert.equal(typeof h.latencyMs, 'number');
    const tools = doc.hops.find((h: { name: string }) => h.name === 'mcp-tools');
    assert.match(tools.note, /llc-mcp-test 0\.0\.0-test, 3 tools/); // TOOLS + hold-stream
    assert.equal(doc.readiness.status, 'pass');
    assert.deepEqual(readinessErrors(doc.readiness), []);
    // The one docker call: the exact argv compose needs to show exited one-shots, in the JSON format.
    assert.deepEqual(r.log, [['compose', '-f', COMPOSE_FILE, '-p', 'llc', 'ps', '-a', '--format', 'json']]);
    // The MCP session was closed (DELETE): a smoke run after every deploy leaves nothing behind on the server.
    assert.equal(stack!.mcp.openSessions, 0);
  });

  test('passes with the older compose ps output (one JSON array) and prints each hop with its latency', async () => {
    const r = await smoke(writeConfig('healthy-array'), writePs('ps-array.json', psEntries(), 'array'), ['--timeout', '60s']);
    assert.equal(r.code, 0, r.stdout + r.stderr);
    for (let i = 1; i <= 8; i++) assert.match(r.stdout, new RegExp(`ok +hop ${i}/8 .*\\(\\d+(\\.\\d+)? m?s`), `hop ${i} line`);
    assert.match(r.stdout, /hop 4\/8 MCP initialize \+ tools\/list .*3 tools/);
    assert.match(r.stdout, /smoke passed: 8 hops/);
    assert.doesNotMatch(r.stdout + r.stderr, new RegExp(stack!.pg.password), 'the database password never shows');
  });

  test('the proxy serves MCP liveness and readiness under /mcp/, and streams SSE without buffering', async () => {
    const live = await fetch(`${stack!.caddy.url}/mcp/healthz`);
    assert.equal(live.status, 200);
    assert.deepEqual(await live.json(), { status: 'pass' });
    // A tool that notifies and then blocks: the notification only arrives before the result if the proxy
    // passes the stream through as it is written (flush_interval -1). Buffered, this test hangs and times out.
    const client = new Client({ name: 'stream-test', version: '0' });
    const transport = new StreamableHTTPClientTransport(new URL(`${stack!.caddy.url}/mcp`));
    let notified!: () => void;
    const gotNotification = new Promise<void>((r) => (notified = r));
    client.setNotificationHandler(LoggingMessageNotificationSchema, (n) => {
      if (n.params.data === 'hold-stream started') notified();
    });
    try {
      await client.connect(transport);
      const call = client.callTool({ name: 'hold-stream', arguments: {} });
      await gotNotification;
      stack!.release();
      const result = await call;
      assert.deepEqual(result.content, [{ type: 'text', text: 'released' }]);
    } finally {
      await transport.terminateSession().catch(() => {});
      await client.close();
    }
  });

  test('migrations exited 1: fails at hop 1 (compose) at once, naming the service', async () => {
    const ps = writePs('ps-migrations-failed.json', psEntries({ migrations: { ExitCode: 1, Status: 'Exited (1) 1 minute ago' } }), 'lines');
    const r = await smoke(writeConfig('migrations'), ps, ['--json', '--timeout', '60s']);
    assert.equal(r.code, 1, r.stderr);
    assert.equal(r.doc!.failedHop.name, 'compose');
    assert.equal(r.doc!.failedHop.hop, 1);
    assert.match(r.doc!.failedHop.error, /migrations exited 1/);
    // A definite failure is not retried until the deadline.
    assert.equal(r.doc!.hops[0].attempts, 1);
    assert.match(r.stderr, /smoke failed at hop 1\/8 \(compose\): migrations exited 1/);
    // The remaining hops were still looked at once, for diagnosis.
    assert.ok(r.doc!.hops.slice(1).every((h: { afterFailure: boolean }) => h.afterFailure));
  });

  test('a service still starting is "not yet": smoke waits for it until the deadline, then names it', async () => {
    const ps = writePs('ps-starting.json', psEntries({ mcp: { Health: 'starting' } }), 'lines');
    const r = await smoke(writeConfig('starting'), ps, ['--json', '--timeout', '2s']);
    assert.equal(r.code, 1);
    assert.equal(r.doc!.failedHop.name, 'compose');
    assert.match(r.doc!.failedHop.error, /not ready by the deadline: mcp running, starting/);
    assert.ok(r.doc!.hops[0].attempts > 1, 'retried');
  });

  test('wrong proxy route (upstreams swapped): fails at hop 2 (frontend)', async () => {
    const s = stack!;
    const wrong = await startCaddy({ frontend: `127.0.0.1:${s.mcp.port}`, mcp: `127.0.0.1:${s.frontend.port}` });
    try {
      const r = await smoke(writeConfig('wrong-route', { url: wrong.url }), writePs('ps-ok.json', psEntries(), 'lines'), ['--json', '--timeout', '5s']);
      assert.equal(r.code, 1, r.stderr);
      assert.equal(r.doc!.failedHop.name, 'frontend');
      assert.match(r.doc!.failedHop.error, /HTTP 404/);
    } finally {
      await wrong.stop();
    }
  });

  test('a configured tool missing from tools/list: fails at hop 4 (mcp-tools), naming it', async () => {
    const r = await smoke(writeConfig('tools', { tools: [...TOOLS, 'summarize_graph'] }), writePs('ps-ok.json', psEntries(), 'lines'), ['--json', '--timeout', '20s']);
    assert.equal(r.code, 1, r.stderr);
    assert.equal(r.doc!.failedHop.name, 'mcp-tools');
    assert.match(r.doc!.failedHop.error, /lacks summarize_graph/);
  });

  test('a store that does not answer directly: fails at that store after every proxy hop passed', async () => {
    const dead = `http://127.0.0.1:${await freePort()}`;
    const r = await smoke(writeConfig('qdrant-down', { qdrantUrl: dead }), writePs('ps-ok.json', psEntries(), 'lines'), ['--json', '--timeout', '2s']);
    assert.equal(r.code, 1, r.stderr);
    assert.equal(r.doc!.failedHop.name, 'qdrant');
    assert.match(r.doc!.failedHop.error, /ECONNREFUSED/);
    assert.deepEqual(r.doc!.hops.slice(0, 5).map((h: { status: string }) => h.status), ['ok', 'ok', 'ok', 'ok', 'ok']);
  });

  test('PostgreSQL stopped: readiness is 503 with the postgres check failing (schema-valid); smoke fails at hop 3', async () => {
    const s = stack!;
    s.pg.stop();
    const res = await fetch(`${s.caddy.url}/mcp/readyz`);
    assert.equal(res.status, 503);
    const body = (await res.json()) as { status: string; checks: Record<string, { status: string; error: string | null }> };
    assert.deepEqual(readinessErrors(body), [], 'the 503 body still follows schemas/readiness.schema.json');
    assert.equal(body.status, 'fail');
    assert.equal(body.checks.postgres!.status, 'fail');
    assert.ok(body.checks.postgres!.error);
    for (const other of ['neo4j', 'qdrant', 's3']) assert.equal(body.checks[other]!.status, 'pass', other);

    const r = await smoke(writeConfig('pg-down'), writePs('ps-ok.json', psEntries(), 'lines'), ['--json', '--timeout', '3s']);
    assert.equal(r.code, 1, r.stderr);
    assert.equal(r.doc!.failedHop.name, 'mcp-readiness');
    assert.match(r.doc!.failedHop.error, /postgres fail/);
    assert.equal(r.doc!.readiness.checks.postgres.status, 'fail');
    assert.deepEqual(readinessErrors(r.doc!.readiness), []);
    // The direct look at the store agrees.
    assert.equal(r.doc!.hops.find((h: { name: string }) => h.name === 'postgres').status, 'fail');
  });

  test('MCP server stopped: the proxy answers 502 and smoke fails at hop 3 (mcp-readiness)', async () => {
    await stack!.mcp.close();
    const r = await smoke(writeConfig('mcp-down'), writePs('ps-ok.json', psEntries(), 'lines'), ['--json', '--timeout', '3s']);
    assert.equal(r.code, 1, r.stderr);
    assert.equal(r.doc!.failedHop.name, 'mcp-readiness');
    assert.match(r.doc!.failedHop.error, /HTTP 502/);
    assert.ok(r.doc!.hops[2].attempts > 1, '502 while mcp restarts is "not yet", retried');
  });
});

describe('smoke without a stack', () => {
  test('settings: --timeout takes durations or seconds; default services are the compose file minus profiles and one-shots', () => {
    assert.equal(parseTimeout('90', '--timeout'), 90_000);
    assert.equal(parseTimeout('2m', '--timeout'), 120_000);
    assert.equal(parseTimeout('1m30s', '--timeout'), 90_000);
    assert.throws(() => parseTimeout('0', '--timeout'), /must be more than zero/);
    const names = composeServiceNames(['services:\n  a: {}\n  tools: { profiles: [ops] }\n', 'services:\n  b: { image: x }\n  a: {}\n']);
    assert.deepEqual(names, ['a', 'b']);
    // Profiles through a merge key, and added or cleared by a later file, as Compose merges them.
    const merged = composeServiceNames([
      'x-debug: &debug\n  profiles: [debug]\nservices:\n  web: { image: nginx }\n  debugger:\n    <<: *debug\n    image: busybox\n  late: { image: x }\n  back: { image: y, profiles: [ops] }\n',
      'services:\n  late: { profiles: [debug] }\n  back: { profiles: [] }\n',
    ]);
    assert.deepEqual(merged, ['web', 'back']);
  });

  test('no containers at all: says the stack may not be up, and names the project', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'llc-smoke-empty-'));
    try {
      const cfg = join(dir, 'ops.config.yaml');
      writeFileSync(cfg, `compose: { files: [${COMPOSE_FILE}], projectName: llc }\nsmoke: { url: "http://127.0.0.1:${await freePort()}" }\n`);
      writeFileSync(join(dir, 'ps'), '');
      const r = await runScriptProcess('smoke', ['--config', cfg, '--timeout', '1s', '--json'], {
        env: { PATH: `${join(ROOT, 'test', 'fakes')}:${process.env.PATH}`, FAKE_DOCKER_PS: join(dir, 'ps') },
      });
      assert.equal(r.code, 1, r.stderr);
      const doc = JSON.parse(r.stdout) as { failedHop: { name: string; error: string } };
      assert.equal(doc.failedHop.name, 'compose');
      assert.match(doc.failedHop.error, /no containers in project llc: is the stack up/);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  test('a docker compose ps that hangs: smoke ends at its deadline and leaves no docker process behind', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'llc-smoke-hang-'));
    const project = `llchang${process.pid}`;
    try {
      const cfg = join(dir, 'ops.config.yaml');
      writeFileSync(cfg, `compose: { files: [${COMPOSE_FILE}], projectName: ${project} }\nsmoke: { url: "http://127.0.0.1:${await freePort()}" }\n`);
      const started = Date.now();
      const r = await runScriptProcess('smoke', ['--config', cfg, '--timeout', '2s', '--json'], {
        env: { PATH: `${join(ROOT, 'test', 'fakes')}:${process.env.PATH}`, FAKE_DOCKER_SLOW: ' ps ', FAKE_DOCKER_SLOW_MS: '40000' },
      });
      assert.equal(r.code, 1, r.stderr);
      assert.equal((JSON.parse(r.stdout) as { failedHop: { name: string } }).failedHop.name, 'compose');
      // The hung ps blocks for 40 s: a run that waited for it, or for each retry's, ends long after its 2 s deadline.
      assert.ok(Date.now() - started < 30_000, `smoke ended ${Date.now() - started} ms after it started`);
      await new Promise((res) => setTimeout(res, 300));
      const left = spawnSync('pgrep', ['-f', '--', `-p ${project} ps`], { encoding: 'utf8' });
      assert.equal(left.status, 1, `no docker compose ps left running (pgrep: ${left.stdout}${left.stderr})`);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  test('a bad --timeout is a usage error (exit 2)', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'llc-smoke-cfg-'));
    try {
      const cfg = join(dir, 'ops.config.yaml');
      writeFileSync(cfg, `compose: { files: [${COMPOSE_FILE}] }\n`);
      const r = await runScriptProcess('smoke', ['--config', cfg, '--timeout', 'soon']);
      assert.equal(r.code, 2);
      assert.match(r.stderr + r.stdout, /--timeout: not a duration: "soon"/);
      writeFileSync(cfg, `compose: { files: [${COMPOSE_FILE}] }\nsmoke: { stores: [qdrant] }\n`);
      const r2 = await runScriptProcess('smoke', ['--config', cfg]);
      assert.equal(r2.code, 2);
      assert.match(r2.stderr + r2.stdout, /smoke\.stores: qdrant not configured under sources/);
      writeFileSync(cfg, `smoke: { url: http://127.0.0.1 }\n`);
      const r3 = await runScriptProcess('smoke', ['--config', cfg]);
      assert.equal(r3.code, 2);
      assert.match(r3.stderr + r3.stdout, /compose: is required by smoke/);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe('probes against misbehaving servers (no stack needed)', () => {
  const settings = (url: string, extra: Partial<SmokeSettings> = {}) => ({ url, mcpPath: '/mcp', readinessPath: '/readyz', tools: [], ...extra }) as SmokeSettings;
  const why = (a: Awaited<ReturnType<typeof attemptOnce>>) => ('reason' in a ? a.reason : '');

  test('tools/list that repeats its cursor fails at once, saying so; one that never answers is named in the timeout', async () => {
    const looping = await startMcpTestServer({ tools: ['a'], checks: {}, toolsList: 'cursor-loop' });
    const hanging = await startMcpTestServer({ tools: ['a'], checks: {}, toolsList: 'hang' });
    try {
      const loop = await attemptOnce(mcpProbe(settings(`http://127.0.0.1:${looping.port}`)), 5000, new AbortController().signal);
      assert.deepEqual([loop.state, why(loop)], ['fail', 'tools/list repeats its cursor "same" after 2 pages']);
      const hang = await attemptOnce(mcpProbe(settings(`http://127.0.0.1:${hanging.port}`)), 1500, new AbortController().signal);
      assert.equal(hang.state, 'wait');
      assert.match(why(hang), /^no answer within 1\.5 s \(at tools\/list\)$/, 'initialize answered: the hang is named');
    } finally {
      await looping.close();
      await hanging.close();
    }
  });

  test('readiness: a 503 with JSON that is no readiness document is "not yet" like 502/504; a body over 1 MiB is said to be one; a page that is not MCP says so', async () => {
    const server = createServer((req, res) => {
      if (req.url === '/readyz') {
        res.writeHead(503, { 'content-type': 'application/json' }).end('{"message":"no healthy upstream"}');
      } else if (req.url === '/huge/readyz') {
        res.writeHead(200, { 'content-type': 'application/json' }).end(`{"status":"pass","pad":"${'x'.repeat(3 << 20)}"}`);
      } else {
        res.writeHead(200, { 'content-type': 'text/html' }).end('<html>welcome</html>');
      }
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    const base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
    try {
      const signal = new AbortController().signal;
      const wait = await attemptOnce(readinessProbe(settings(base)), 5000, signal);
      assert.equal(wait.state, 'wait', why(wait));
      const huge = await attemptOnce(readinessProbe(settings(`${base}/huge`)), 5000, signal);
      assert.deepEqual([huge.state, why(huge)], ['fail', `${base}/huge/readyz: HTTP 200, a body over 1 MiB: not a readiness document`]);
      assert.equal((await httpGet(`${base}/huge/readyz`, { signal })).truncated, true);
      assert.equal((await httpGet(`${base}/readyz`, { signal })).truncated, false);
      const html = await attemptOnce(mcpProbe(settings(base)), 5000, signal);
      assert.equal(html.state, 'fail');
      assert.match(why(html), /^not an MCP answer: /);
    } finally {
      server.close();
    }
  });

  test('an error message is one line (OpenSSL ends its own with a newline)', () => {
    const err = new TypeError('fetch failed', { cause: new Error('write EPROTO C0D7:error:0A00010B:SSL routines:ssl3_get_record:wrong version number:\n') });
    assert.equal(describeError(err), 'write EPROTO C0D7:error:0A00010B:SSL routines:ssl3_get_record:wrong version number:');
  });
});
