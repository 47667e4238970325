// compose/compose.prod.yaml wires the migrations one-shot so `up -d --wait` applies the schema before the app
// starts and a failed migration keeps the app down (DESIGN.md §6, Compose).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { parse } from 'yaml';
import { REPO } from './helpers/alembic-fixture.ts';

interface Service {
  image?: string;
  command?: string[] | string;
  restart?: unknown;
  environment?: Record<string, string>;
  depends_on?: Record<string, { condition?: string }> | string[];
}

// YAML 1.1 rules, as older Compose parsers apply them: an unquoted `no` would be the boolean false there.
const compose = parse(readFileSync(`${REPO}/compose/compose.prod.yaml`, 'utf8'), { version: '1.1' }) as { services: Record<string, Service> };
const services = compose.services;

function dependsOn(name: string): Record<string, { condition?: string }> {
  const d = services[name]?.depends_on;
  assert.ok(d && !Array.isArray(d), `${name}: depends_on must be the long form (with conditions)`);
  return d;
}

test('migrations is a one-shot: restart "no" (the string, not YAML false), alembic upgrade head, the mcp image', () => {
  const m = services.migrations;
  assert.ok(m, 'a migrations service exists');
  assert.equal(m.restart, 'no');
  const command = Array.isArray(m.command) ? m.command.join(' ') : m.command;
  assert.equal(command, 'alembic upgrade head');
  assert.equal(m.image, services.mcp?.image, 'migrations runs the app image whose Alembic scripts match the app');
  assert.match(m.environment?.DATABASE_URL ?? '', /@postgres:5432\//, 'it reaches postgres by service name, URL from the environment');
});

test('migrations waits for a healthy postgres', () => {
  assert.equal(dependsOn('migrations').postgres?.condition, 'service_healthy');
});

test('mcp and workers start only after migrations exited 0', () => {
  for (const app of ['mcp', 'workers']) {
    assert.equal(dependsOn(app).migrations?.condition, 'service_completed_successfully', `${app} depends on migrations`);
  }
});

test('no long-running service depends on migrations in a way that lets a failed migration through', () => {
  for (const [name, s] of Object.entries(services)) {
    const d = s.depends_on;
    if (!d) continue;
    if (Array.isArray(d)) {
      assert.ok(!d.includes('migrations'), `${name}: a short-form depends_on on migrations only waits for it to start`);
      continue;
    }
    const c = d.migrations?.condition;
    if (c !== undefined) assert.equal(c, 'service_completed_successfully', `${name}: depends on migrations with ${c}`);
  }
});
