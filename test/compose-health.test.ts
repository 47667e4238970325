// compose/compose.prod.yaml health gating: every long-running service has a healthcheck its image can run, startup
// waits for health where it must, and the healthcheck commands themselves work (run here against real servers).
import { describe, test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, utimesSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parse as parseYaml } from 'yaml';
import { startPgSandbox, freePort, findPgBin } from '../lib/pg-sandbox.ts';
import { requireTools } from './helpers/tools.ts';
import { ROOT } from './helpers/scripts.ts';
import { startCaddy, PROD_CADDYFILE } from './helpers/caddy.ts';
import { startMcpTestServer } from './helpers/mcp-test-server.ts';
import { startFrontendTestServer } from './helpers/frontend-test-server.ts';
import { startStoreHealthFake } from './fakes/store-health-fake.ts';

interface Healthcheck {
  test?: string[] | string;
  interval?: string;
  timeout?: string;
  retries?: number;
  start_period?: string;
  start_interval?: string;
  disable?: boolean;
}
interface Service {
  image?: string;
  restart?: string;
  healthcheck?: Healthcheck;
  depends_on?: Record<string, { condition?: string }> | string[];
}

const COMPOSE_FILE = join(ROOT, 'compose', 'compose.prod.yaml');
const services = (parseYaml(readFileSync(COMPOSE_FILE, 'utf8')) as { services: Record<string, Service> }).services;
const ONE_SHOTS = ['migrations'];
const longRunning = Object.keys(services).filter((n) => !ONE_SHOTS.includes(n));

/**
 * What each image family ships (DESIGN.md §6): the programs a healthcheck may start, and ones it must not use.
 * A new image needs a row here: nobody guesses what is inside an image.
 */
const FAMILIES: { match: RegExp; family: string; programs: string[]; forbidden: RegExp[]; must?: RegExp[] }[] = [
  { match: /^(docker\.io\/)?(library\/)?postgres[:@]/, family: 'postgres', programs: ['pg_isready'], forbidden: [], must: [/-h 127\.0\.0\.1/] },
  { match: /^(docker\.io\/)?qdrant\/qdrant[:@]/, family: 'qdrant (no curl, no wget)', programs: ['bash'], forbidden: [/\bcurl\b/, /\bwget\b/], must: [/\/dev\/tcp\//] },
  { match: /^(quay\.io\/|docker\.io\/)?minio\/minio[:@]/, family: 'minio (ships mc)', programs: ['mc'], forbidden: [/\bcurl\b/, /\bwget\b/], must: [/^mc ready local$/] },
  { match: /^(docker\.io\/)?(library\/)?neo4j[:@]/, family: 'neo4j (wget, no curl)', programs: ['wget'], forbidden: [/\bcurl\b/] },
  { match: /^(docker\.io\/)?(library\/)?caddy[:@].*alpine/, family: 'caddy alpine (busybox wget)', programs: ['wget'], forbidden: [/\bcurl\b/] },
  { match: /^ghcr\.io\/llc\/mcp[:@]/, family: 'llc mcp (Python)', programs: ['python'], forbidden: [/\bcurl\b/, /\bwget\b/], must: [/\/readyz/] },
  { match: /^ghcr\.io\/llc\/workers[:@]/, family: 'llc workers (Python)', programs: ['python'], forbidden: [/\bcurl\b/, /\bwget\b/], must: [/heartbeat/] },
  { match: /^ghcr\.io\/llc\/frontend[:@]/, family: 'llc frontend (Node)', programs: ['node'], forbidden: [/\bcurl\b/, /\bwget\b/] },
];

/** The command as the container runs it: CMD is an argv; CMD-SHELL goes through /bin/sh. Compose turns $$ into $. */
function commandOf(hc: Healthcheck): { argv: string[]; text: string } {
  const t = hc.test;
  assert.ok(Array.isArray(t) && t.length >= 2, `healthcheck.test must be ["CMD", ...] or ["CMD-SHELL", "..."], got ${JSON.stringify(t)}`);
  const unescape = (s: string) => s.replace(/\$\$/g, '$');
  if (t[0] === 'CMD') return { argv: t.slice(1).map(unescape), text: t.slice(1).map(unescape).join(' ') };
  assert.equal(t[0], 'CMD-SHELL', `healthcheck.test[0] must be CMD or CMD-SHELL, got ${t[0]}`);
  assert.equal(t.length, 2, 'CMD-SHELL takes one string');
  return { argv: ['sh', '-c', unescape(t[1]!)], text: unescape(t[1]!) };
}

function programOf(hc: Healthcheck): string {
  const { argv } = commandOf(hc);
  return argv[0] === 'sh' ? argv[2]!.trim().split(/\s+/)[0]! : argv[0]!;
}

describe('compose.prod.yaml healthchecks (static)', () => {
  test('the file has the services of the stack (this test is not vacuous)', () => {
    for (const s of ['postgres', 'qdrant', 'minio', 'neo4j', 'migrations', 'mcp', 'workers', 'frontend', 'reverse-proxy']) assert.ok(services[s], s);
    assert.equal(services.migrations!.restart, 'no', 'migrations is a one-shot');
  });

  for (const name of longRunning) {
    test(`${name}: has a healthcheck whose program exists in its image family`, () => {
      const svc = services[name]!;
      const hc = svc.healthcheck;
      assert.ok(hc && !hc.disable, `${name} has no healthcheck`);
      const family = FAMILIES.find((f) => f.match.test(svc.image ?? ''));
      assert.ok(family, `${name}: unknown image family for ${svc.image}: add it to FAMILIES with what the image ships`);
      const { text } = commandOf(hc);
      assert.ok(family.programs.includes(programOf(hc)), `${name} (${family.family}) runs ${programOf(hc)}; the image ships ${family.programs.join(', ')}`);
      for (const f of family.forbidden) assert.doesNotMatch(text, f, `${name} (${family.family}) must not use ${f}`);
      for (const m of family.must ?? []) assert.match(text, m, `${name} (${family.family})`);
    });

    test(`${name}: start_period wherever start_interval is, and sane timings`, () => {
      const hc = services[name]!.healthcheck!;
      if (hc.start_interval !== undefined) assert.ok(hc.start_period, `${name}: start_interval needs start_period (DESIGN.md §6)`);
      for (const k of ['interval', 'timeout', 'start_period', 'start_interval'] as const) {
        if (hc[k] !== undefined) assert.match(hc[k]!, /^[0-9]+(ms|s|m|h)$/, `${name}.healthcheck.${k}`);
      }
      assert.ok(hc.retries === undefined || hc.retries >= 1, `${name}: retries`);
    });
  }

  test('reverse-proxy waits for frontend and mcp to be healthy', () => {
    const deps = services['reverse-proxy']!.depends_on;
    assert.ok(deps && !Array.isArray(deps), 'depends_on in the long form, with conditions');
    assert.equal(deps.frontend?.condition, 'service_healthy');
    assert.equal(deps.mcp?.condition, 'service_healthy');
  });

  test('reverse-proxy mounts compose/Caddyfile, and the healthcheck uses a GET (the admin API answers HEAD with 405)', () => {
    const svc = services['reverse-proxy']! as Service & { volumes?: string[] };
    assert.ok(svc.volumes?.includes('./Caddyfile:/etc/caddy/Caddyfile:ro'));
    assert.doesNotMatch(commandOf(svc.healthcheck!).text, /--spider/);
  });
});

function withoutSiteAddress(): NodeJS.ProcessEnv {
  const env = { ...process.env };
  delete env.LLC_SITE_ADDRESS;
  return env;
}

describe('compose/Caddyfile (real caddy adapt)', { skip: requireTools(['caddy']) }, () => {
  test('parses, and routes /mcp to mcp:8000 unbuffered, /mcp/readyz to /readyz, the rest to frontend:3000', () => {
    const dir = mkdtempSync(join(tmpdir(), 'llc-caddy-adapt-'));
    try {
      const r = spawnSync('caddy', ['adapt', '--config', PROD_CADDYFILE, '--adapter', 'caddyfile'], {
        encoding: 'utf8',
        // LLC_SITE_ADDRESS unset: the default (:80) applies, as compose's ${LLC_SITE_ADDRESS:-:80} guarantees.
        env: { ...withoutSiteAddress(), HOME: dir, XDG_CONFIG_HOME: dir, XDG_DATA_HOME: dir },
      });
      assert.equal(r.status, 0, r.stderr);
      const cfg = JSON.parse(r.stdout) as { admin: { listen: string }; apps: { http: { servers: Record<string, { listen: string[]; routes: unknown[] }> } } };
      assert.equal(cfg.admin.listen, '127.0.0.1:2019');
      const server = Object.values(cfg.apps.http.servers)[0]!;
      assert.deepEqual(server.listen, [':80']);
      const text = JSON.stringify(server.routes);
      assert.match(text, /"match":\[\{"path":\["\/mcp\/healthz","\/mcp\/readyz"\]\}\].*"strip_path_prefix":"\/mcp".*"dial":"mcp:8000"/);
      assert.match(text, /"match":\[\{"path":\["\/mcp","\/mcp\/\*"\]\}\].*"flush_interval":-1,"handler":"reverse_proxy","upstreams":\[\{"dial":"mcp:8000"\}\]/);
      assert.match(text, /"dial":"frontend:3000"/);
      // Probes come before the /mcp route, or /mcp/* would swallow them.
      assert.ok(text.indexOf('/mcp/readyz') < text.indexOf('"/mcp/*"'));
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

/**
 * Run a healthcheck command here, with its addresses pointed at local servers; resolves to the exit code.
 * Asynchronous: the servers it talks to run in this process.
 */
async function runHealthcheck(name: string, replace: [string, string][], env: Record<string, string> = {}): Promise<number> {
  const { argv } = commandOf(services[name]!.healthcheck!);
  for (const [from] of replace) assert.ok(argv.some((a) => a.includes(from)), `${name}: the healthcheck no longer contains ${from}`);
  // The images call it python; here it is python3.
  const local = argv.map((a) => replace.reduce((s, [from, to]) => s.split(from).join(to), a)).map((a, i) => (i === 0 && a === 'python' ? 'python3' : a));
  const child = spawn(local[0]!, local.slice(1), { env: { ...process.env, ...env }, stdio: 'ignore', timeout: 15_000 });
  return new Promise((resolve, reject) => {
    child.on('error', reject);
    child.on('exit', (code) => resolve(code ?? -1));
  });
}

describe('healthcheck commands, run for real against local servers', { skip: requireTools(['bash', 'wget', 'python3', 'pg_isready', 'caddy']) ?? (findPgBin() ? undefined : 'PostgreSQL server binaries missing') }, () => {
  const cleanups: (() => Promise<void> | void)[] = [];
  after(async () => {
    for (const c of cleanups.reverse()) await c();
  });
  let dir = '';
  before(() => {
    dir = mkdtempSync(join(tmpdir(), 'llc-hc-'));
    cleanups.push(() => rmSync(dir, { recursive: true, force: true }));
  });

  test('postgres: pg_isready -h 127.0.0.1 passes on a running server and fails once it stops', async () => {
    const pg = await startPgSandbox();
    cleanups.push(() => pg.destroy());
    const env = { POSTGRES_USER: pg.user, POSTGRES_DB: 'postgres', PGPORT: String(pg.port) };
    assert.equal(await runHealthcheck('postgres', [], env), 0);
    pg.stop();
    assert.notEqual(await runHealthcheck('postgres', [], env), 0);
  });

  test('qdrant: the bash /dev/tcp probe passes on /readyz 200 and fails on 503 or a closed port', async () => {
    const fake = await startStoreHealthFake();
    cleanups.push(() => fake.close());
    const port = new URL(fake.qdrantUrl).port;
    assert.equal(await runHealthcheck('qdrant', [['127.0.0.1/6333', `127.0.0.1/${port}`]]), 0);
    const busy = createServer((_, res) => res.writeHead(503).end('not ready'));
    await new Promise<void>((r) => busy.listen(0, '127.0.0.1', r));
    cleanups.push(() => void busy.close());
    assert.notEqual(await runHealthcheck('qdrant', [['127.0.0.1/6333', `127.0.0.1/${(busy.address() as { port: number }).port}`]]), 0);
    assert.notEqual(await runHealthcheck('qdrant', [['127.0.0.1/6333', `127.0.0.1/${await freePort()}`]]), 0);
  });

  test('mcp: the python readiness probe passes on 200 and fails when a dependency is down (503)', async () => {
    let postgresUp = true;
    const mcp = await startMcpTestServer({
      tools: [],
      checks: {
        postgres: async () => {
          if (!postgresUp) throw new Error('connection refused');
        },
        neo4j: async () => {},
        qdrant: async () => {},
        s3: async () => {},
      },
    });
    cleanups.push(() => mcp.close());
    const to: [string, string][] = [['http://127.0.0.1:8000/readyz', `${mcp.url}/readyz`]];
    assert.equal(await runHealthcheck('mcp', to), 0);
    postgresUp = false;
    assert.notEqual(await runHealthcheck('mcp', to), 0);
    assert.equal(mcp.lastReadiness?.status, 503);
  });

  test('workers: the heartbeat probe passes on a fresh file, fails on a stale or missing one', async () => {
    const hb = join(dir, 'heartbeat');
    const to: [string, string][] = [['/tmp/heartbeat', hb]];
    assert.notEqual(await runHealthcheck('workers', to), 0, 'missing');
    writeFileSync(hb, '');
    assert.equal(await runHealthcheck('workers', to), 0, 'fresh');
    const old = new Date(Date.now() - 300_000);
    utimesSync(hb, old, old);
    assert.notEqual(await runHealthcheck('workers', to), 0, 'stale');
  });

  test('frontend: the node fetch probe passes on 200 and fails on a closed port', async () => {
    const fe = await startFrontendTestServer('x');
    cleanups.push(() => fe.close());
    assert.equal(await runHealthcheck('frontend', [['http://127.0.0.1:3000/', `${fe.url}/`]]), 0);
    assert.notEqual(await runHealthcheck('frontend', [['http://127.0.0.1:3000/', `http://127.0.0.1:${await freePort()}/`]]), 0);
  });

  test('reverse-proxy: the wget probe passes against the admin API of a real caddy running compose/Caddyfile', async () => {
    const caddy = await startCaddy({ frontend: `127.0.0.1:${await freePort()}`, mcp: `127.0.0.1:${await freePort()}` });
    cleanups.push(() => caddy.stop());
    assert.equal(await runHealthcheck('reverse-proxy', [['http://127.0.0.1:2019/', `http://127.0.0.1:${caddy.adminPort}/`]]), 0);
    await caddy.stop();
    assert.notEqual(await runHealthcheck('reverse-proxy', [['http://127.0.0.1:2019/', `http://127.0.0.1:${caddy.adminPort}/`]]), 0);
  });
});
