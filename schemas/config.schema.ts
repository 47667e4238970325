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
            restoreInto: {
              type: 'object',
              additionalProperties: nonEmptyString,
              description: 'restore bucket A into bucket B: { A: B }',
            },
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
    migrations: {
      type: 'object',
      additionalProperties: false,
      required: ['via'],
      description: 'how migrate, rollback and check-migrations run Alembic (docs/deployment_guide.md)',
      properties: {
        via: { enum: ['compose', 'local'], description: 'compose: `docker compose run --rm <service>`; local: a command on this host' },
        service: { ...nonEmptyString, description: 'via: compose; the one-shot migrations service (default migrations)' },
        command: { type: 'array', items: nonEmptyString, minItems: 1, description: 'the alembic program; default ["alembic"] in the container, [python, "-m", "alembic"] locally' },
        python: { ...nonEmptyString, description: 'the Python that has Alembic and the app (local and check-migrations; default /usr/bin/python3)' },
        appDir: { ...nonEmptyString, description: 'via: local; the directory holding alembic.ini, relative to this file (default: this file\'s directory)' },
        alembicConfig: { ...nonEmptyString, description: 'alembic.ini passed as -c: relative to appDir locally (default alembic.ini), a container path under compose (default: none)' },
        databaseUrl: { type: 'string', pattern: '^postgres(ql)?://', description: 'via: local; given to Alembic as env DATABASE_URL, never in argv' },
      },
      if: { properties: { via: { const: 'local' } } },
      then: { required: ['databaseUrl'] },
    },
    smoke: {
      type: 'object',
      additionalProperties: false,
      description: 'scripts/smoke.ts: every hop of the request path after a deploy (docs/deployment_guide.md)',
      properties: {
        url: { type: 'string', pattern: '^https?://', description: 'the reverse proxy as clients reach it; default http://127.0.0.1' },
        frontendPath: { type: 'string', pattern: '^/', description: 'default /' },
        frontendMarker: { type: 'string', minLength: 1, description: 'text the frontend page must contain' },
        mcpPath: { type: 'string', pattern: '^/', description: 'the MCP Streamable HTTP endpoint; default /mcp' },
        readinessPath: { type: 'string', pattern: '^/', description: 'MCP /readyz as the proxy serves it; default /mcp/readyz (compose/Caddyfile)' },
        mcpToken: { type: 'string', description: 'bearer token for the MCP endpoint, when it needs one' },
        tools: { ...names, description: 'tool names tools/list must include' },
        services: { ...names, description: 'long-running services that must be running and healthy; default: every service of compose.files minus oneShots' },
        oneShots: { type: 'array', items: nonEmptyString, uniqueItems: true, description: 'services that must have exited 0; default ["migrations"]' },
        stores: { type: 'array', items: { enum: ['postgres', 'qdrant', 's3', 'neo4j'] }, uniqueItems: true, description: 'stores checked directly; default: every configured source' },
        s3Check: { enum: ['minio-health', 'list-buckets'], description: 'minio-health: GET /minio/health/live (default); list-buckets: any S3 store, with the credentials' },
        timeout: duration,
      },
    },
    pinning: {
      type: 'object',
      additionalProperties: false,
      description: 'scripts/check-pinning.ts policy (docs/versions.md); without this section the defaults apply',
      properties: {
        critical: { type: 'array', items: nonEmptyString, uniqueItems: true, description: 'services whose image needs a digest; default postgres, qdrant, minio, neo4j, reverse-proxy' },
        floatingTags: { type: 'array', items: nonEmptyString, uniqueItems: true, description: 'tags that fail the check; default latest, stable, main, master, edge, nightly, dev, lts, current, mainline, alpine, slim ("latest" always fails)' },
      },
    },
  },
} as const;
