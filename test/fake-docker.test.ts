// test/fakes/docker (a FAKE docker CLI): other tests rely on it recording calls, printing canned `compose ps`,
// failing on demand and delegating `compose exec` to real local tools, whatever the order of compose's options.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ROOT } from './helpers/scripts.ts';

const FAKES = join(ROOT, 'test', 'fakes');

function withDir<T>(fn: (dir: string) => T): T {
  const dir = mkdtempSync(join(tmpdir(), 'llc-fake-docker-'));
  try {
    return fn(dir);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

function docker(args: string[], env: Record<string, string>, input?: string) {
  return spawnSync('docker', args, { env: { ...process.env, PATH: `${FAKES}:${process.env.PATH}`, ...env }, encoding: 'utf8', input });
}

test('the fake is the docker found first on PATH, and logs every call as one JSON argv per line', () =>
  withDir((dir) => {
    const log = join(dir, 'log');
    const calls = [
      ['compose', '-f', 'a.yaml', '--file=b.yaml', '-p', 'llc', 'stop', 'neo4j'],
      ['compose', '--project-name', 'llc', 'run', '--rm', 'neo4j', 'neo4j-admin', 'x y'],
      ['version'],
    ];
    for (const c of calls) assert.equal(docker(c, { FAKE_DOCKER_LOG: log }).status, 0);
    assert.deepEqual(readFileSync(log, 'utf8').trim().split('\n').map((l) => JSON.parse(l)), calls);
  }));

test('compose ps prints FAKE_DOCKER_PS verbatim, after any global options; nothing when unset', () =>
  withDir((dir) => {
    const ps = join(dir, 'ps');
    const text = '{"Service":"postgres","State":"running"}\n{"Service":"mcp","State":"running"}\n';
    writeFileSync(ps, text);
    for (const args of [
      ['compose', 'ps', '-a', '--format', 'json'],
      ['compose', '-f', 'x.yaml', '-f', 'y.yaml', '-p', 'llc', 'ps', '-a', '--format', 'json'],
      ['compose', '--env-file', '.env', '--project-directory', '/srv', '--profile', 'ops', 'ps', '--format', 'json'],
    ]) {
      const r = docker(args, { FAKE_DOCKER_PS: ps });
      assert.equal(r.status, 0);
      assert.equal(r.stdout, text);
    }
    assert.equal(docker(['compose', 'ps'], {}).stdout, '');
  }));

test('FAKE_DOCKER_FAIL: a matching call exits 1 with a message; others still succeed', () =>
  withDir((dir) => {
    const log = join(dir, 'log');
    const env = { FAKE_DOCKER_FAIL: 'stop neo4j$', FAKE_DOCKER_LOG: log };
    const r = docker(['compose', '-p', 'llc', 'stop', 'neo4j'], env);
    assert.equal(r.status, 1);
    assert.match(r.stderr, /fake docker: failing on demand/);
    assert.equal(docker(['compose', '-p', 'llc', 'start', 'neo4j'], env).status, 0);
    assert.equal(readFileSync(log, 'utf8').trim().split('\n').length, 2, 'failed calls are logged too');
  }));

test('compose exec runs the command locally with stdin, exit code and -e variables passed through', () => {
  const r = docker(['compose', '-f', 'c.yaml', '-p', 'llc', 'exec', '-T', '-e', 'FROM_PARENT', '-e', 'SET_HERE=b', '-u', 'postgres', 'postgres', 'sh', '-c', 'cat; echo "$FROM_PARENT $SET_HERE"; exit 7'], { FROM_PARENT: 'a' }, 'stdin-data;');
  assert.equal(r.status, 7);
  assert.equal(r.stdout, 'stdin-data;a b\n');
});

test('compose exec of a program that is not on PATH exits 127 naming it', () => {
  const r = docker(['compose', 'exec', '-T', 'neo4j', 'neo4j-admin-not-here', 'database', 'dump'], {});
  assert.equal(r.status, 127);
  assert.match(r.stderr, /"neo4j-admin-not-here" is not a program/);
});
