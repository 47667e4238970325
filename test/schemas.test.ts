// The published schemas/*.json are exactly what the .ts sources (the one source of the types) generate.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, readFileSync } from 'node:fs';
import { basename } from 'node:path';
import { loadSchemas, render, renderValidator } from '../schemas/build.ts';

test('every schemas/*.schema.json matches its .schema.ts (run npm run schemas after editing)', async () => {
  const schemas = await loadSchemas();
  assert.ok(schemas.length >= 2, 'config and manifest schemas at least');
  for (const { json, schema } of schemas) {
    assert.ok(existsSync(json), `${json} missing: run npm run schemas`);
    assert.equal(readFileSync(json, 'utf8'), render(schema), `${json} is stale: run npm run schemas`);
  }
});

test('every schemas/*.validate.ts is the validator its schema compiles to (run npm run schemas after editing)', async () => {
  for (const { json, validator, schema } of await loadSchemas()) {
    assert.ok(existsSync(validator), `${validator} missing: run npm run schemas`);
    assert.equal(readFileSync(validator, 'utf8'), renderValidator(schema, basename(json).replace(/\.json$/, '.ts')), `${validator} is stale: run npm run schemas`);
  }
});
