// The readiness contract (schemas/readiness.schema.ts, docs/health.md): what a valid /readyz body is, and how its
// status, the checks and the HTTP code must agree.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { contractErrors, overallStatus, readinessDocument, readinessErrors, readinessHttpStatus, summarizeChecks, type Check, type Readiness } from '../lib/readiness.ts';
import { requireTools } from './helpers/tools.ts';

const pass: Check = { status: 'pass', latencyMs: 3, error: null };
const checks = (over: Record<string, Check> = {}) => ({ postgres: pass, neo4j: pass, qdrant: pass, s3: pass, ...over });

test('a pass, a warn and a fail document are valid', () => {
  assert.deepEqual(readinessErrors({ status: 'pass', checks: checks() }), []);
  assert.deepEqual(readinessErrors({ status: 'warn', version: '1.4.2', checks: checks({ s3: { status: 'warn', latencyMs: 1200.5, error: 'slow: 1200 ms' } }) }), []);
  assert.deepEqual(readinessErrors({ status: 'fail', checks: checks({ postgres: { status: 'fail', latencyMs: 2001, error: 'connection refused' } }) }), []);
  // The app may report more dependencies, in the same shape.
  assert.deepEqual(readinessErrors({ status: 'pass', checks: { ...checks(), redis: pass } }), []);
});

test('invalid documents are rejected with the path of the problem', () => {
  const { neo4j: _, ...withoutNeo4j } = checks();
  assert.match(readinessErrors({ status: 'pass', checks: withoutNeo4j }).join('\n'), /checks: must have required property 'neo4j'/);
  assert.match(readinessErrors({ status: 'fail', checks: checks({ postgres: { status: 'fail', latencyMs: 1, error: null } }) }).join('\n'), /checks\.postgres\.error: must be string/);
  assert.match(readinessErrors({ status: 'ok', checks: checks() }).join('\n'), /status: must be equal to one of the allowed values \(pass, warn, fail\)/);
  assert.match(readinessErrors({ status: 'pass', checks: checks({ qdrant: { status: 'pass', latencyMs: -1, error: null } }) }).join('\n'), /checks\.qdrant\.latencyMs: must be >= 0/);
  assert.match(readinessErrors({ status: 'pass', checks: checks(), uptime: 5 }).join('\n'), /additional properties \(uptime\)/);
  assert.match(readinessErrors({ status: 'pass', checks: checks({ s3: { status: 'pass', latencyMs: 1 } as Check }) }).join('\n'), /checks\.s3: must have required property 'error'/);
  assert.notDeepEqual(readinessErrors('<html>Bad Gateway</html>'), []);
});

test('status is the worst check; HTTP 200 on pass and warn, 503 on fail', () => {
  assert.equal(overallStatus(checks()), 'pass');
  assert.equal(overallStatus(checks({ s3: { status: 'warn', latencyMs: 1, error: 'slow' } })), 'warn');
  assert.equal(overallStatus(checks({ s3: { status: 'warn', latencyMs: 1, error: 'slow' }, neo4j: { status: 'fail', latencyMs: 1, error: 'down' } })), 'fail');
  assert.deepEqual(['pass', 'warn', 'fail'].map((s) => readinessHttpStatus(s as Check['status'])), [200, 200, 503]);
  const doc = readinessDocument(checks({ neo4j: { status: 'fail', latencyMs: 5, error: 'down' } }), '2.0.0');
  assert.equal(doc.status, 'fail');
  assert.equal(doc.version, '2.0.0');
  assert.equal(summarizeChecks(doc), 'neo4j fail: down');
});

test('contract: the HTTP code and the status agree, and the status is the worst check', () => {
  const failing = readinessDocument(checks({ postgres: { status: 'fail', latencyMs: 1, error: 'refused' } }));
  assert.deepEqual(contractErrors(503, failing), []);
  assert.deepEqual(contractErrors(200, failing), ['HTTP 200 with status "fail" (the contract says 503)']);
  assert.deepEqual(contractErrors(200, { ...failing, status: 'pass' }), ['status "pass" but the worst check is "fail"']);
  assert.deepEqual(contractErrors(200, readinessDocument(checks())), []);
});

test('docs/health.md shows a document that is valid against the schema', () => {
  const doc = readFileSync(join(import.meta.dirname, '..', 'docs', 'health.md'), 'utf8');
  const blocks = [...doc.matchAll(/```json\n([\s\S]*?)```/g)].map((m) => JSON.parse(m[1]!) as unknown);
  assert.ok(blocks.length >= 2, 'a pass and a fail example');
  for (const b of blocks) assert.deepEqual(readinessErrors(b), []);
});

test('the Python reference implementation in docs/health.md answers by the contract (run with python3)', { skip: requireTools(['python3']) }, async () => {
  const doc = readFileSync(join(import.meta.dirname, '..', 'docs', 'health.md'), 'utf8');
  const code = /```python\n([\s\S]*?)```/.exec(doc)?.[1];
  assert.ok(code?.includes('async def readiness('), 'the first python block is readiness.py');
  const dir = mkdtempSync(join(tmpdir(), 'llc-readiness-py-'));
  try {
    writeFileSync(join(dir, 'readiness.py'), code!);
    writeFileSync(
      join(dir, 'harness.py'),
      [
        'import asyncio, json, time',
        'import readiness as r',
        'r.CHECK_TIMEOUT_S = 0.3',
        'r.SLOW_MS = 100',
        'def ok(): pass',
        'def slow(): time.sleep(0.15)',
        'def refused(): raise ConnectionRefusedError("[Errno 111] Connection refused")',
        'def hangs(): time.sleep(1)',
        'cases = {',
        '  "pass": {"postgres": ok, "neo4j": ok, "qdrant": ok, "s3": ok},',
        '  "warn": {"postgres": ok, "neo4j": ok, "qdrant": ok, "s3": slow},',
        '  "fail": {"postgres": refused, "neo4j": ok, "qdrant": hangs, "s3": slow},',
        '}',
        'print(json.dumps({k: asyncio.run(r.readiness(v, "1.2.3")) for k, v in cases.items()}))',
        'print(json.dumps(r.LIVENESS))',
      ].join('\n'),
    );
    const { stdout } = await promisify(execFile)('python3', ['harness.py'], { cwd: dir });
    const [answers, liveness] = stdout.trim().split('\n').map((l) => JSON.parse(l)) as [Record<string, [number, Readiness]>, unknown];
    assert.deepEqual(Object.keys(answers), ['pass', 'warn', 'fail']);
    for (const [expected, [http, body]] of Object.entries(answers)) {
      assert.deepEqual(readinessErrors(body), [], `${expected}: schema`);
      assert.equal(body.status, expected);
      assert.equal(http, expected === 'fail' ? 503 : 200);
      assert.deepEqual(contractErrors(http, body), [], `${expected}: contract`);
      assert.equal(body.version, '1.2.3');
    }
    const fail = answers.fail![1].checks as Record<string, Check>;
    assert.equal(fail.postgres!.error, 'ConnectionRefusedError: [Errno 111] Connection refused');
    assert.equal(fail.qdrant!.error, 'no answer within 0.3 s');
    assert.equal(fail.s3!.status, 'warn');
    assert.deepEqual(liveness, { status: 'pass' });
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
