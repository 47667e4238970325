// Config: .env + YAML + ${VAR} interpolation + ajv validation, every error reported at once with its path (exit 2).
import { readFileSync, existsSync } from 'node:fs';
import { dirname, resolve, isAbsolute } from 'node:path';
import { parse as parseDotenv } from 'dotenv';
import { parseDocument, isAlias, isMap, isSeq, isScalar, LineCounter, type Document, type Node } from 'yaml';
import type { ErrorObject, ValidateFunction } from 'ajv';
import { validate as configValidator } from '../schemas/config.validate.ts';
import type { FromSchema } from 'json-schema-to-ts';
import { configSchema } from '../schemas/config.schema.ts';
import { interpolate } from './interpolate.ts';
import { UsageError } from './errors.ts';

export type Config = FromSchema<typeof configSchema>;
export type PostgresConfig = NonNullable<NonNullable<Config['sources']>['postgres']>;

export interface LoadedConfig {
  config: Config;
  /** Absolute path of the config file. */
  path: string;
  /** Directory relative paths in the config are resolved against. */
  dir: string;
  /** Values that must never be printed (passwords, keys), for the redactor. */
  secrets: string[];
  /** The environment used for interpolation (.env under the process env). */
  env: Record<string, string | undefined>;
}

export interface LoadOptions {
  configPath?: string;
  envFile?: string;
  env?: NodeJS.ProcessEnv;
  cwd?: string;
}

const SECRET_KEY = /pass(word)?|secret|api[-_]?key|access[-_]?key|token/i;

/** Compiled ahead of time by `npm run schemas` (ajv standalone): no schema compiling at start-up. */
const validate = configValidator as ValidateFunction;

export function defaultConfigPath(opts: LoadOptions = {}): string {
  const env = opts.env ?? process.env;
  return resolve(opts.cwd ?? process.cwd(), opts.configPath ?? env.OPS_CONFIG ?? 'ops.config.yaml');
}

/** Dotted path for messages: /sources/postgres/url -> sources.postgres.url; array items as [0]. */
export function dottedPath(segments: (string | number)[]): string {
  return segments.reduce<string>((acc, s) => (typeof s === 'number' ? `${acc}[${s}]` : acc ? `${acc}.${s}` : s), '') || '(top level)';
}

function pointerToSegments(pointer: string): (string | number)[] {
  if (!pointer) return [];
  return pointer
    .slice(1)
    .split('/')
    .map((s) => s.replace(/~1/g, '/').replace(/~0/g, '~'))
    .map((s) => (/^\d+$/.test(s) ? Number(s) : s));
}

export function formatAjvErrors(errors: ErrorObject[]): string[] {
  const out: string[] = [];
  for (const e of errors) {
    // "must match then schema" repeats the real error that follows it.
    if (e.keyword === 'if') continue;
    const at = pointerToSegments(e.instancePath);
    let line: string;
    if (e.keyword === 'additionalProperties') {
      line = `${dottedPath([...at, String(e.params.additionalProperty)])}: unknown key`;
    } else if (e.keyword === 'required') {
      line = `${dottedPath([...at, String(e.params.missingProperty)])}: is required`;
    } else if (e.keyword === 'enum') {
      line = `${dottedPath(at)}: must be one of ${(e.params.allowedValues as unknown[]).map((v) => JSON.stringify(v)).join(', ')}`;
    } else {
      line = `${dottedPath(at)}: ${e.message ?? e.keyword}`;
    }
    if (!out.includes(line)) out.push(line);
  }
  return out;
}

interface Walk {
  env: Record<string, string | undefined>;
  doc: Document;
  errors: string[];
  secrets: string[];
  /** Paths whose value came from a variable (cast later where the schema wants a number or boolean). */
  interpolated: (string | number)[][];
  /** Scalars interpolated, so an alias of one (read after its anchor) is recorded at its own path too. */
  nodes: Set<Node>;
  /** Dotted paths whose variable was unset or empty: the value there is not the user's, schema errors on it are noise. */
  unset: Set<string>;
}

/** Walk the YAML tree, interpolating every string scalar; errors name the config path where a variable is used. */
function interpolateTree(node: Node | null, path: (string | number)[], secretPath: boolean, w: Walk): void {
  if (!node) return;
  if (isAlias(node)) {
    recordAliased(node.resolve(w.doc) as Node | undefined, path, w);
  } else if (isMap(node)) {
    for (const pair of node.items) {
      const key = isScalar(pair.key) ? String(pair.key.value) : String(pair.key);
      interpolateTree(pair.value as Node, [...path, key], secretPath || SECRET_KEY.test(key), w);
    }
  } else if (isSeq(node)) {
    node.items.forEach((item, i) => interpolateTree(item as Node, [...path, i], secretPath, w));
  } else if (isScalar(node) && typeof node.value === 'string') {
    const raw = node.value;
    const r = interpolate(raw, w.env);
    for (const e of r.errors) w.errors.push(`${dottedPath(path)}: ${e}`);
    if (r.errors.length) w.unset.add(dottedPath(path));
    node.value = r.value;
    if (r.used.length > 0) {
      w.interpolated.push(path);
      w.nodes.add(node);
    }
    if (secretPath && r.value) w.secrets.push(r.value);
    // A variable named like a secret is one wherever it is used (a password interpolated into a databaseUrl).
    for (const name of r.used) if (SECRET_KEY.test(name) && w.env[name]) w.secrets.push(w.env[name]!);
  } else if (isScalar(node) && secretPath && node.value !== null && node.value !== undefined) {
    w.secrets.push(String(node.value));
  }
}

/** An alias's value was interpolated where its anchor is: record the interpolated scalars at the alias's paths. */
function recordAliased(node: Node | undefined, path: (string | number)[], w: Walk): void {
  if (!node) return;
  if (isMap(node)) for (const pair of node.items) recordAliased(pair.value as Node, [...path, isScalar(pair.key) ? String(pair.key.value) : String(pair.key)], w);
  else if (isSeq(node)) node.items.forEach((item, i) => recordAliased(item as Node, [...path, i], w));
  else if (isAlias(node)) recordAliased(node.resolve(w.doc) as Node | undefined, path, w);
  else if (w.nodes.has(node)) w.interpolated.push(path);
}

interface SchemaNode {
  type?: string | readonly string[];
  const?: unknown;
  properties?: Record<string, SchemaNode>;
  additionalProperties?: boolean | SchemaNode;
  items?: SchemaNode;
  anyOf?: readonly SchemaNode[];
  oneOf?: readonly SchemaNode[];
}

const alternatives = (nodes: SchemaNode[]): SchemaNode[] => nodes.flatMap((n) => [n, ...(n.anyOf ?? []), ...(n.oneOf ?? [])]);

/** The JSON types the config schema allows at a path (empty where it says nothing). */
export function schemaTypesAt(path: (string | number)[]): Set<string> {
  let nodes: SchemaNode[] = [configSchema as unknown as SchemaNode];
  for (const key of path) {
    const next: SchemaNode[] = [];
    for (const n of alternatives(nodes)) {
      if (typeof key === 'number') {
        if (n.items) next.push(n.items);
      } else if (n.properties?.[key]) next.push(n.properties[key]);
      else if (typeof n.additionalProperties === 'object') next.push(n.additionalProperties);
    }
    nodes = next;
  }
  const types = new Set<string>();
  for (const n of alternatives(nodes)) {
    for (const t of n.type === undefined ? [] : [n.type].flat()) types.add(t);
    if (n.const !== undefined) types.add(typeof n.const);
  }
  return types;
}

/**
 * As Compose does: what a variable gave is text, cast to a number or boolean only where the schema wants one
 * (a password of digits stays the string it is, quoted or not).
 */
function castInterpolated(data: unknown, path: (string | number)[]): void {
  let parent = data as Record<string | number, unknown>;
  for (const key of path.slice(0, -1)) parent = parent?.[key] as Record<string | number, unknown>;
  const key = path.at(-1);
  if (parent === null || typeof parent !== 'object' || key === undefined || typeof parent[key] !== 'string') return;
  const text = parent[key] as string;
  const types = schemaTypesAt(path);
  if (types.has('string')) return;
  if ((types.has('number') || types.has('integer')) && /^-?[0-9]+(\.[0-9]+)?$/.test(text)) parent[key] = Number(text);
  else if (types.has('boolean') && (text === 'true' || text === 'false')) parent[key] = text === 'true';
}

export function loadConfig(opts: LoadOptions = {}): LoadedConfig {
  const processEnv = opts.env ?? process.env;
  const path = defaultConfigPath(opts);
  const dir = dirname(path);
  if (!existsSync(path)) {
    throw new UsageError(`config file not found: ${path}`, ['pass --config FILE or set OPS_CONFIG, or create ops.config.yaml (see README.md)']);
  }
  const envFile = opts.envFile ? resolve(opts.cwd ?? process.cwd(), opts.envFile) : resolve(dir, '.env');
  let fileEnv: Record<string, string> = {};
  if (existsSync(envFile)) {
    fileEnv = parseDotenv(readText(envFile, 'env file'));
  } else if (opts.envFile) {
    throw new UsageError(`env file not found: ${envFile}`);
  }
  // As in Compose, the process environment wins over .env.
  const env: Record<string, string | undefined> = { ...fileEnv, ...processEnv };
  return parseConfigText(readText(path, 'config file'), { path, dir, env });
}

/** A file the user named, read whole; a directory or an unreadable file is a usage error naming it (exit 2). */
function readText(path: string, what: string): string {
  try {
    return readFileSync(path, 'utf8');
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'EISDIR') throw new UsageError(`${what} ${path} is a directory: name the file itself`);
    throw new UsageError(`${what} ${path} cannot be read: ${(err as Error).message}`);
  }
}

export function parseConfigText(text: string, where: { path: string; dir: string; env: Record<string, string | undefined> }): LoadedConfig {
  const errors: string[] = [];
  const lineCounter = new LineCounter();
  const doc = parseDocument(text, { prettyErrors: false, uniqueKeys: true, lineCounter });
  for (const e of doc.errors) {
    const at = lineCounter.linePos(e.pos[0]);
    errors.push(`${where.path}:${at.line}:${at.col}: ${e.message.split('\n')[0]}`);
  }
  if (errors.length > 0) throw new UsageError(`invalid config ${where.path}`, errors);
  const secrets: string[] = [];
  const w: Walk = { env: where.env, doc, errors, secrets, interpolated: [], nodes: new Set(), unset: new Set() };
  interpolateTree(doc.contents as Node, [], false, w);
  const data: unknown = doc.toJS() ?? {};
  for (const path of w.interpolated) castInterpolated(data, path);
  if (!validate(data)) {
    // "url: must match pattern" after "url: variable DB_URL is not set" says the same thing twice.
    const own = (validate.errors ?? []).filter((e) => !w.unset.has(dottedPath(pointerToSegments(e.instancePath))));
    errors.push(...formatAjvErrors(own));
  }
  if (errors.length > 0) throw new UsageError(`invalid config ${where.path}: ${errors.length} problem${errors.length > 1 ? 's' : ''}`, errors);
  const config = data as Config;
  resolvePaths(config, where.dir);
  return { config, path: where.path, dir: where.dir, secrets, env: where.env };
}

/** Relative paths in the config mean "relative to the config file", whatever the working directory (cron). */
function resolvePaths(config: Config, dir: string): void {
  const abs = (p: string) => (isAbsolute(p) ? p : resolve(dir, p));
  if (config.backup) (config.backup as { root: string }).root = abs(config.backup.root);
  if (config.compose) (config.compose as { files: string[] }).files = config.compose.files.map(abs);
  if (config.monitoring?.textfileDir) (config.monitoring as { textfileDir: string }).textfileDir = abs(config.monitoring.textfileDir);
}

/** A section a script cannot work without: a usage error naming it (exit 2). */
export function need<T>(value: T | undefined, path: string, why: string): T {
  if (value === undefined || value === null) throw new UsageError(`invalid config: ${path}: is required ${why}`);
  return value;
}
