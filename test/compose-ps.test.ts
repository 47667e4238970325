// lib/compose-ps.ts: both output shapes of `docker compose ps -a --format json`, and the verdicts smoke acts on.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { judgeServices, parseComposePs, type ComposeContainer } from '../lib/compose-ps.ts';

// Field sets as Compose prints them (v2.21+ JSON lines; earlier v2 a JSON array with the same fields).
const PG = { Command: '"docker-entrypoint.s…"', CreatedAt: '2026-11-24 10:00:00 +0000 UTC', ExitCode: 0, Health: 'healthy', ID: 'a1', Image: 'postgres:17.6-bookworm', Labels: 'x=y', LocalVolumes: '1', Mounts: 'llc_postgres-data', Name: 'llc-postgres-1', Names: 'llc-postgres-1', Networks: 'llc_default', Ports: '127.0.0.1:5432->5432/tcp', Project: 'llc', Publishers: [{ URL: '127.0.0.1', TargetPort: 5432, PublishedPort: 5432, Protocol: 'tcp' }], RunningFor: '2 minutes ago', Service: 'postgres', Size: '0B', State: 'running', Status: 'Up 2 minutes (healthy)' };
const MIG = { ...PG, ExitCode: 0, Health: '', ID: 'b2', Name: 'llc-migrations-1', Service: 'migrations', State: 'exited', Status: 'Exited (0) 1 minute ago', Publishers: [] };
const EXPECTED: ComposeContainer[] = [
  { Name: 'llc-postgres-1', Service: 'postgres', State: 'running', Health: 'healthy', ExitCode: 0, OneOff: false },
  { Name: 'llc-migrations-1', Service: 'migrations', State: 'exited', Health: '', ExitCode: 0, OneOff: false },
];

test('JSON lines (compose v2.21+) and the older JSON array parse to the same entries', () => {
  const lines = `${JSON.stringify(PG)}\n${JSON.stringify(MIG)}\n`;
  const array = JSON.stringify([PG, MIG]);
  assert.deepEqual(parseComposePs(lines), EXPECTED);
  assert.deepEqual(parseComposePs(array), EXPECTED);
  // Pretty-printed arrays and CRLF line ends are the same data.
  assert.deepEqual(parseComposePs(JSON.stringify([PG, MIG], null, 2)), EXPECTED);
  assert.deepEqual(parseComposePs(lines.replace(/\n/g, '\r\n')), EXPECTED);
});

test('no containers: empty output, or an empty array', () => {
  assert.deepEqual(parseComposePs(''), []);
  assert.deepEqual(parseComposePs('\n'), []);
  assert.deepEqual(parseComposePs('[]'), []);
});

test('output that is not compose JSON is an error naming the line, never an empty stack', () => {
  assert.throws(() => parseComposePs(`${JSON.stringify(PG)}\nWARN[0000] something`), /line 2: not JSON: WARN/);
  assert.throws(() => parseComposePs('[{"Service": "x"'), /not valid JSON/);
  assert.throws(() => parseComposePs('{"State":"running"}'), /line 1: no "Service" field/);
  assert.throws(() => parseComposePs('[1]'), /\[0\]: expected a JSON object/);
});

test('missing Health and a string ExitCode are tolerated (older releases)', () => {
  assert.deepEqual(parseComposePs('{"Service":"w","State":"Running","ExitCode":"0"}'), [{ Name: 'w', Service: 'w', State: 'running', Health: '', ExitCode: 0, OneOff: false }]);
});

const c = (Service: string, State: string, Health = '', ExitCode = 0): ComposeContainer => ({ Name: `llc-${Service}-1`, Service, State, Health, ExitCode, OneOff: false });
const expect = { services: ['postgres', 'mcp'], oneShots: ['migrations'] };

test('verdicts: healthy stack ok; one-shot must exit 0; unhealthy and starting are "not yet"', () => {
  const ok = judgeServices([c('migrations', 'exited'), c('postgres', 'running', 'healthy'), c('mcp', 'running', 'healthy')], expect);
  assert.deepEqual(ok.map((v) => v.verdict), ['ok', 'ok', 'ok']);

  const failed = judgeServices([c('migrations', 'exited', '', 1), c('postgres', 'running', 'healthy'), c('mcp', 'running', 'healthy')], expect);
  assert.deepEqual(failed[0], { service: 'migrations', verdict: 'fail', reason: 'exited 1' });

  const starting = judgeServices([c('migrations', 'running'), c('postgres', 'running', 'starting'), c('mcp', 'running', 'unhealthy')], expect);
  assert.deepEqual(starting.map((v) => v.verdict), ['wait', 'wait', 'wait']);
});

test('verdicts: a missing container waits; an exited or dead long-running service fails; no healthcheck fails', () => {
  const v = judgeServices([c('postgres', 'exited', '', 137), c('mcp', 'running')], expect);
  assert.deepEqual(v, [
    { service: 'migrations', verdict: 'wait', reason: 'no container yet (one-shot)' },
    { service: 'postgres', verdict: 'fail', reason: 'exited 137' },
    { service: 'mcp', verdict: 'fail', reason: 'running without a healthcheck (compose.prod.yaml gives every service one)' },
  ]);
  assert.equal(judgeServices([c('migrations', 'dead')], { services: [], oneShots: ['migrations'] })[0]!.verdict, 'fail');
  assert.equal(judgeServices([c('postgres', 'restarting')], { services: ['postgres'], oneShots: [] })[0]!.verdict, 'wait');
});

test('verdicts: every replica of a scaled service counts', () => {
  const v = judgeServices([{ ...c('mcp', 'running', 'healthy'), Name: 'llc-mcp-1' }, { ...c('mcp', 'running', 'unhealthy'), Name: 'llc-mcp-2' }], { services: ['mcp'], oneShots: [] });
  assert.deepEqual(v.map((x) => x.verdict), ['ok', 'wait']);
});

test('containers of `docker compose run` (ps -a lists them: label com.docker.compose.oneoff=True) are not the service', () => {
  const labels = (oneoff: string) => `com.docker.compose.container-number=1,com.docker.compose.oneoff=${oneoff},com.docker.compose.project=llc,com.docker.compose.service=mcp`;
  const MCP = { ...PG, Name: 'llc-mcp-1', Service: 'mcp', Labels: labels('False') };
  const shell = { ...PG, Name: 'llc-mcp-run-3f2a', Service: 'mcp', Health: 'unhealthy', Labels: labels('True') };
  const oldRun = { ...MIG, Name: 'llc-migrations-run-9c1d', ExitCode: 1, Status: 'Exited (1) 2 days ago', Labels: labels('True').replace('service=mcp', 'service=migrations') };
  const parsed = parseComposePs([MCP, shell, { ...MIG, Labels: labels('False') }, oldRun].map((x) => JSON.stringify(x)).join('\n'));
  assert.deepEqual(parsed.map((x) => x.OneOff), [false, true, false, true]);
  assert.equal(parseComposePs(JSON.stringify({ ...MCP, Labels: { 'com.docker.compose.oneoff': 'True' } }))[0]!.OneOff, true, 'labels as an object');
  const v = judgeServices(parsed, { services: ['mcp'], oneShots: ['migrations'] });
  assert.deepEqual(v, [
    { service: 'migrations', verdict: 'ok', reason: 'exited 0' },
    { service: 'mcp', verdict: 'ok', reason: 'running, healthy' },
  ]);
});

test('a replica that is not ready is named', () => {
  const replicas = [{ ...c('mcp', 'running', 'healthy'), Name: 'llc-mcp-1' }, { ...c('mcp', 'running', 'starting'), Name: 'llc-mcp-2' }];
  assert.deepEqual(judgeServices(replicas, { services: ['mcp'], oneShots: [] }).map((x) => x.reason), ['llc-mcp-1 running, healthy', 'llc-mcp-2 running, starting']);
});
