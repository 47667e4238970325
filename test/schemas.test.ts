// The published schemas/*.json are exactly what the .ts sources (the one source of the types) generate.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, readFileSync } from 'node:fs';
import { loadSchemas, render } from '../schemas/build.ts';

test('every schemas/*.schema.json matches its .schema.ts (run npm run schemas after editing)', async () => {
  const schemas = await loadSchemas();
  assert.ok(schemas.length >= 2, 'config and manifest schemas at least');
  for (const { json, schema } of schemas) {
    assert.ok(existsSync(json), `${json} missing: run npm run schemas`);
    assert.equal(readFileSync(json, 'utf8'), render(schema), `${json} is stale: run npm run schemas`);
  }
});
