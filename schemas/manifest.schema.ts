// The backup set's manifest.json (DESIGN.md §5): the one source for validation and the Manifest type.
export const manifestSchema = {
  $schema: 'http://json-schema.org/draft-07/schema#',
  $id: 'https://llc-ops.invalid/schemas/manifest.schema.json',
  title: 'llc-ops backup set manifest',
  type: 'object',
  additionalProperties: false,
  required: ['formatVersion', 'id', 'startedAt', 'finishedAt', 'host', 'toolVersion', 'tags', 'sources', 'artifacts'],
  properties: {
    formatVersion: { const: 1 },
    id: { type: 'string', pattern: '^[0-9]{8}T[0-9]{6}Z$' },
    startedAt: { type: 'string', format: 'date-time' },
    finishedAt: { type: 'string', format: 'date-time' },
    host: { type: 'string' },
    toolVersion: { type: 'string' },
    tags: { type: 'array', items: { type: 'string', pattern: '^[a-z0-9][a-z0-9-]*$' }, uniqueItems: true },
    sources: {
      type: 'object',
      additionalProperties: {
        type: 'object',
        additionalProperties: false,
        required: ['serverVersion', 'durationMs', 'counts'],
        properties: {
          serverVersion: { type: 'string' },
          durationMs: { type: 'number', minimum: 0 },
          /** scope (database, collection, bucket) -> item (table, "points", "objects") -> count */
          counts: {
            type: 'object',
            additionalProperties: { type: 'object', additionalProperties: { type: 'integer', minimum: 0 } },
          },
          details: { type: 'object' },
        },
      },
    },
    artifacts: {
      type: 'array',
      items: {
        type: 'object',
        additionalProperties: false,
        required: ['path', 'size', 'sha256', 'source'],
        properties: {
          path: { type: 'string', pattern: '^(?!/)(?!.*(^|/)\\.\\.(/|$)).+$' },
          size: { type: 'integer', minimum: 0 },
          sha256: { type: 'string', pattern: '^[0-9a-f]{64}$' },
          source: { type: 'string' },
          kind: { type: 'string' },
          compression: { enum: ['none', 'gzip', 'zstd'] },
        },
      },
    },
  },
} as const;
