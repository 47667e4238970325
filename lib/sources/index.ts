// Which sources the config names, built in restore order. The only place that knows every kind.
import type { LoadedConfig } from '../config.ts';
import { UsageError } from '../errors.ts';
import type { ComposeSettings } from '../run.ts';
import { SOURCE_ORDER, type Source, type SourceName } from './types.ts';

type Factory = (loaded: LoadedConfig, compose: ComposeSettings | undefined) => Promise<Source>;

// Loaded on demand: a PostgreSQL-only run never pays for the S3 SDK's start-up (docs/performance.md).
const FACTORIES: Partial<Record<SourceName, Factory>> = {
  postgres: async (l, compose) => (await import('./postgres.ts')).createPostgresSource(l.config.sources!.postgres!, compose),
  neo4j: async (l, compose) => (await import('./neo4j.ts')).createNeo4jSource(l.config.sources!.neo4j!, compose),
  qdrant: async (l) => (await import('./qdrant.ts')).createQdrantSource(l.config.sources!.qdrant!),
  s3: async (l) => (await import('./s3.ts')).createS3Source(l.config.sources!.s3!),
};

export function composeSettings(loaded: LoadedConfig): ComposeSettings | undefined {
  const c = loaded.config.compose;
  return c ? { files: [...c.files], projectName: c.projectName, command: c.command ? [...c.command] : undefined } : undefined;
}

/** Parse --only "postgres,s3" (repeatable) into known source names. */
export function parseOnly(values: string[] | undefined): SourceName[] | undefined {
  if (!values || values.length === 0) return undefined;
  const names = values.flatMap((v) => v.split(',')).map((s) => s.trim()).filter(Boolean);
  const bad = names.filter((n) => !SOURCE_ORDER.includes(n as SourceName));
  if (bad.length) throw new UsageError(`--only: unknown source ${bad.join(', ')} (known: ${SOURCE_ORDER.join(', ')})`);
  return [...new Set(names)] as SourceName[];
}

/** The configured sources (filtered by --only) in restore order; usage errors for unknown or unconfigured names. */
export function configuredNames(loaded: LoadedConfig, only?: SourceName[]): SourceName[] {
  const configured = SOURCE_ORDER.filter((n) => loaded.config.sources?.[n] !== undefined);
  if (only) {
    const missing = only.filter((n) => !configured.includes(n));
    if (missing.length) throw new UsageError(`--only: ${missing.join(', ')} not configured in ${loaded.path} (sources: ${configured.join(', ') || 'none'})`);
  }
  const names = configured.filter((n) => !only || only.includes(n));
  if (names.length === 0) throw new UsageError(`no sources configured in ${loaded.path}: add at least one under sources:`);
  return names;
}

export async function configuredSources(loaded: LoadedConfig, only?: SourceName[]): Promise<Source[]> {
  const compose = composeSettings(loaded);
  return Promise.all(
    configuredNames(loaded, only).map((n) => {
      const factory = FACTORIES[n];
      if (!factory) throw new UsageError(`sources.${n}: not supported by this version of llc-ops`);
      return factory(loaded, compose);
    }),
  );
}
