// The MCP readiness response (GET /readyz, docs/health.md): the one source for validation and the Readiness type.
// schemas/readiness.schema.json is generated from this file (npm run schemas) and a test keeps the two equal.

const check = {
  type: 'object',
  additionalProperties: false,
  required: ['status', 'latencyMs', 'error'],
  properties: {
    status: { enum: ['pass', 'warn', 'fail'], description: 'pass: answers; warn: answers but degraded; fail: does not answer' },
    latencyMs: { type: 'number', minimum: 0, description: 'time the check took, milliseconds' },
    error: {
      type: ['string', 'null'],
      maxLength: 500,
      description: 'why the check warned or failed, one line without secrets; null on pass',
    },
  },
  // A failed check must say why: that line is what the operator reads at 3 a.m.
  if: { properties: { status: { const: 'fail' } } },
  then: { properties: { error: { type: 'string', minLength: 1 } } },
} as const;

export const readinessSchema = {
  $schema: 'http://json-schema.org/draft-07/schema#',
  $id: 'https://llc-ops.invalid/schemas/readiness.schema.json',
  title: 'MCP readiness response (GET /readyz)',
  description:
    'status is the worst of the checks. HTTP 200 when status is pass or warn, 503 when it is fail. Liveness (GET /healthz) checks no dependency.',
  type: 'object',
  additionalProperties: false,
  required: ['status', 'checks'],
  properties: {
    status: { enum: ['pass', 'warn', 'fail'] },
    version: { type: 'string', description: 'the app version serving this response (optional)' },
    checks: {
      type: 'object',
      required: ['postgres', 'neo4j', 'qdrant', 's3'],
      properties: { postgres: check, neo4j: check, qdrant: check, s3: check },
      // The app may add dependencies of its own; they follow the same shape.
      additionalProperties: check,
    },
  },
} as const;
