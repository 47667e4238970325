// npm run schemas: writes schemas/<name>.schema.json from each schemas/<name>.schema.ts (the one source).
import { readdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

export async function loadSchemas(dir = import.meta.dirname): Promise<{ json: string; schema: unknown }[]> {
  const out: { json: string; schema: unknown }[] = [];
  for (const f of readdirSync(dir).filter((n) => n.endsWith('.schema.ts')).sort()) {
    const mod = (await import(join(dir, f))) as Record<string, unknown>;
    const schemas = Object.values(mod).filter((v) => typeof v === 'object' && v !== null && '$schema' in v);
    if (schemas.length !== 1) throw new Error(`${f}: expected exactly one exported JSON Schema, found ${schemas.length}`);
    out.push({ json: join(dir, f.replace(/\.ts$/, '.json')), schema: schemas[0] });
  }
  return out;
}

export const render = (schema: unknown): string => `${JSON.stringify(schema, null, 2)}\n`;

if (import.meta.filename === process.argv[1]) {
  for (const { json, schema } of await loadSchemas()) {
    writeFileSync(json, render(schema));
    console.log(`wrote ${json}`);
  }
}
