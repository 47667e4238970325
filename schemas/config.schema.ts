// The config file's JSON Schema: the one source for validation (ajv) and for the TypeScript type (json-schema-to-ts).
// schemas/config.schema.json is generated from this file (npm run schemas) and a test keeps the two equal.

const duration = {
  type: 'string',
  pattern: '^([0-9]+(ms|s|m|h|d|w))+$',
  description: 'a duration such as 90s, 26h, 1d12h, 2w',
} as const;

const count = { type: 'integer', minimum: 0 } as const;
const nonEmptyString = { type: 'string', minLength: 1 } as const;
const names = { type: 'array', items: nonEmptyString, minItems: 1, uniqueItems: true } as const;

export const configSchema = {
  $schema: 'http://json-schema.org/draft-07/schema#',
  $id: 'https://llc-ops.invalid/schemas/config.schema.json',
  title: 'llc-ops configuration (ops.config.yaml)',
  type: 'object',
  additionalProperties: false,
  properties: {
    compose: {
      type: 'object',
      additionalProperties: false,
      required: ['files'],
      properties: {
        files: { type: 'array', items: nonEmptyString, minItems: 1 },
        projectName: nonEmptyString,
        command: { type: 'array', items: nonEmptyString, minItems: 1, description: 'default ["docker", "compose"]' },
      },
    },
    backup: {
      type: 'object',
      additionalProperties: false,
      required: ['root'],
      properties: {
        root: nonEmptyString,
        retention: {
          type: 'object',
          additionalProperties: false,
          properties: {
            last: count,
            hourly: count,
            daily: count,
            weekly: count,
            monthly: count,
            yearly: count,
            within: duration,
          },
        },
        timezone: { type: 'string', minLength: 1, description: 'IANA zone for retention periods; default: the host zone' },
        maxAge: duration,
        sizeDropWarn: { type: 'number', exclusiveMinimum: 0, maximum: 1, description: 'warn when the newest set is smaller than the previous by more than this fraction' },
        quiesce: { type: 'array', items: nonEmptyString, uniqueItems: true, description: 'compose services stopped during the backup' },
      },
    },
    sources: {
      type: 'object',
      additionalProperties: false,
      properties: {
        postgres: {
          type: 'object',
          additionalProperties: false,
          required: ['via', 'databases'],
          properties: {
            via: { enum: ['compose', 'local'] },
            service: nonEmptyString,
            user: nonEmptyString,
            url: { type: 'string', pattern: '^postgres(ql)?://', description: 'via: local; a password here is moved to the child env, never argv' },
            password: { type: 'string' },
            databases: names,
            globals: { type: 'boolean', description: 'also dump roles (pg_dumpall --globals-only); default true' },
            compression: { enum: ['auto', 'zstd', 'gzip', 'none'] },
            restoreInto: {
              type: 'object',
              additionalProperties: nonEmptyString,
              description: 'restore database A into database B: { A: B }',
            },
          },
          if: { properties: { via: { const: 'local' } } },
          then: { required: ['url'] },
        },
        qdrant: {
          type: 'object',
          additionalProperties: false,
          required: ['url'],
          properties: {
            url: { type: 'string', pattern: '^https?://' },
            apiKey: { type: 'string' },
            collections: { anyOf: [{ const: 'all' }, names] },
            timeout: duration,
          },
        },
        s3: {
          type: 'object',
          additionalProperties: false,
          required: ['endpoint', 'accessKey', 'secretKey'],
          properties: {
            endpoint: { type: 'string', pattern: '^https?://' },
            region: nonEmptyString,
            accessKey: { type: 'string' },
            secretKey: { type: 'string' },
            buckets: { anyOf: [{ const: 'all' }, names] },
            concurrency: { type: 'integer', minimum: 1, maximum: 256 },
            forcePathStyle: { type: 'boolean' },
          },
        },
        neo4j: {
          type: 'object',
          additionalProperties: false,
          required: ['via'],
          properties: {
            via: { const: 'compose' },
            service: nonEmptyString,
            edition: { enum: ['community', 'enterprise'] },
            databases: names,
            httpUrl: { type: 'string', pattern: '^https?://' },
            user: nonEmptyString,
            password: { type: 'string' },
            image: nonEmptyString,
          },
        },
      },
    },
    monitoring: {
      type: 'object',
      additionalProperties: false,
      properties: {
        textfileDir: nonEmptyString,
        ping: {
          type: 'object',
          additionalProperties: false,
          properties: {
            start: { type: 'string', pattern: '^https?://' },
            success: { type: 'string', pattern: '^https?://' },
            failure: { type: 'string', pattern: '^https?://' },
            timeout: duration,
          },
        },
      },
    },
  },
} as const;
