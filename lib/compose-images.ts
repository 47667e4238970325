// Read the `image:` of every service in a compose file, with file:line:column from the YAML parser,
// interpolated like Compose (${VAR}, ${VAR:-d}, ${VAR?err}) from a .env beside the file plus the process env.
import { readFileSync, existsSync } from 'node:fs';
import { basename, dirname, resolve } from 'node:path';
import { parse as parseDotenv } from 'dotenv';
import { parseDocument, visit, LineCounter, isMap, isSeq, isScalar, isAlias, type Document, type Node, type YAMLMap } from 'yaml';
import { interpolate } from './interpolate.ts';
import { UsageError } from './errors.ts';

export interface ComposeImage {
  file: string;
  service: string;
  /** The image text as written (before interpolation); undefined when the service has none. */
  raw?: string;
  /** The image after interpolation. */
  value?: string;
  /** Interpolation problems, e.g. "variable TAG is not set". */
  interpolationErrors: string[];
  /** 1-based position of the image value (or of the service key when there is no image). */
  line: number;
  col: number;
  /** Source offsets of the value token [start, end), for rewriting exactly that text. */
  range?: [number, number];
  /** How the value is written: plain, double or single quoted, or an alias / merge / extends (not rewritable). */
  style: 'plain' | 'double' | 'single' | 'block' | 'alias' | 'merged' | 'extends' | 'none';
  /** The service builds its image (build:), so a missing image is not a problem. */
  builds: boolean;
  /** Why a service without image: needs none in this file: an override file's service (the base file names it). */
  inherits?: string;
  /** `extends:` of a service without image: the service, and the other file (absolute) when one is named. */
  extends?: { service: string; file?: string };
  /** The other compose file a service extends (absolute path): part of the stack, so it is checked too. */
  extendsFile?: string;
  /** What is wrong with where the image should come from (extends of a missing service, a circle, an override of nothing). */
  inheritError?: string;
  /** Reason text of a "# TODO digest: <reason>" comment on or right above the image line. */
  todoDigest?: string;
}

export interface ComposeFile {
  file: string;
  text: string;
  images: ComposeImage[];
  /** Files of the top-level `include:` (absolute): part of the stack, each read as a project of its own. */
  includes: ComposeInclude[];
}

export interface ComposeInclude {
  file: string;
  /** The include's `env_file` (absolute), else undefined: the `.env` of its project directory. */
  envFile?: string;
  /** Where its `.env` is looked for: `project_directory`, else the included file's own directory. */
  projectDir: string;
  /** Position of the entry in the including file, for messages. */
  line: number;
  col: number;
}

/** Where the interpolation variables came from, for the report. */
export interface ComposeEnv {
  env: Record<string, string | undefined>;
  /** The env file read, if any. */
  envFile?: string;
}

// An acknowledged missing digest: the reason after the colon is required, so a bare "TODO digest" is not enough.
const TODO_DIGEST = /#\s*TODO digest:\s*(\S.*?)\s*$/;

/**
 * The variables a compose project is interpolated with: --dotenv if given; else `.env` in its directory (the
 * compose file's, or an include's project_directory); else the committed `.env.example` there (CI has no .env).
 * The process environment wins, as in Compose.
 */
export function composeEnv(projectDir: string, opts: { envFile?: string; env?: NodeJS.ProcessEnv; cwd?: string } = {}): ComposeEnv {
  const processEnv = opts.env ?? process.env;
  let envFile: string | undefined;
  if (opts.envFile) {
    envFile = resolve(opts.cwd ?? process.cwd(), opts.envFile);
    if (!existsSync(envFile)) throw new UsageError(`env file not found: ${envFile}`);
  } else {
    const dir = resolve(opts.cwd ?? process.cwd(), projectDir);
    envFile = [resolve(dir, '.env'), resolve(dir, '.env.example')].find((f) => existsSync(f));
  }
  let fileEnv: Record<string, string> = {};
  if (envFile) {
    try {
      const text = readFileSync(envFile, 'utf8');
      fileEnv = expandDotenv(text, parseDotenv(text), processEnv);
    } catch (err) {
      throw new UsageError(`cannot read env file ${envFile}: ${(err as Error).message}`);
    }
  }
  return { env: { ...fileEnv, ...processEnv }, ...(envFile ? { envFile } : {}) };
}

/**
 * .env values as Compose reads them: an unquoted or double-quoted value may use ${VAR} of the lines above it and
 * of the process environment (which wins, as everywhere); a single-quoted value is literal. A value naming a
 * variable that is set nowhere stays as written, and the image that uses it is reported.
 */
export function expandDotenv(text: string, parsed: Record<string, string>, processEnv: Record<string, string | undefined>): Record<string, string> {
  const literal = new Set<string>();
  for (const line of text.split(/\r?\n/)) {
    const m = /^\s*(?:export\s+)?([\w.-]+)\s*=\s*(['"]?)/.exec(line);
    if (!m) continue;
    if (m[2] === "'") literal.add(m[1]!);
    else literal.delete(m[1]!);
  }
  const out: Record<string, string> = {};
  for (const [key, value] of Object.entries(parsed)) {
    if (literal.has(key)) {
      out[key] = value;
      continue;
    }
    const r = interpolate(value, { ...out, ...processEnv });
    out[key] = r.errors.length ? value : r.value;
  }
  return out;
}

function styleOf(node: Node): ComposeImage['style'] {
  if (!isScalar(node)) return 'none';
  switch (node.type) {
    case 'QUOTE_DOUBLE':
      return 'double';
    case 'QUOTE_SINGLE':
      return 'single';
    case 'BLOCK_FOLDED':
    case 'BLOCK_LITERAL':
      return 'block';
    default:
      return 'plain';
  }
}

/** The maps a `<<:` merge key pulls in (a map, an alias to one, or a sequence of them), nearest first. */
function mergeSources(map: YAMLMap, doc: Document): YAMLMap[] {
  const out: YAMLMap[] = [];
  for (const pair of map.items) {
    // With `merge: true` the yaml package marks the key with a symbol; its source text is still "<<".
    if (!isScalar(pair.key) || (pair.key.value !== '<<' && pair.key.source !== '<<')) continue;
    const values = isSeq(pair.value) ? pair.value.items : [pair.value];
    for (const v of values) {
      const target = isAlias(v) ? v.resolve(doc) : v;
      if (isMap(target)) out.push(target);
    }
  }
  return out;
}

/** Find the image value node of a service, following aliases and merge keys as Compose's YAML parser does. */
function findImageNode(svc: YAMLMap, doc: Document): { node: Node; via: 'direct' | 'alias' | 'merged' } | undefined {
  const direct = svc.get('image', true) as Node | undefined;
  if (direct !== undefined && direct !== null) {
    if (isAlias(direct)) {
      const target = direct.resolve(doc);
      return target ? { node: target as Node, via: 'alias' } : undefined;
    }
    return { node: direct, via: 'direct' };
  }
  for (const src of mergeSources(svc, doc)) {
    const found = findImageNode(src, doc);
    if (found) return { node: found.node, via: 'merged' };
  }
  return undefined;
}

/**
 * The reason of a "# TODO digest:" comment after the image value on its line, or on the comment lines right above
 * it. Only a YAML comment counts: a "#" inside any scalar (a quoted command, a block scalar's shell text) is text.
 */
function todoReason(lines: string[], lineStarts: number[], inScalar: (offset: number) => boolean, lineIndex: number, valueEndCol: number | undefined): string | undefined {
  const comment = (i: number, from: number): string | undefined => {
    const text = (lines[i] ?? '').slice(from);
    const m = TODO_DIGEST.exec(text);
    return m?.[1] && !inScalar((lineStarts[i] ?? 0) + from + m.index) ? m[1] : undefined;
  };
  const same = comment(lineIndex, valueEndCol ?? 0);
  if (same) return same;
  // Comment-only lines directly above the `image:` line.
  for (let i = lineIndex - 1; i >= 0; i--) {
    const l = lines[i] ?? '';
    if (!/^\s*#/.test(l) || inScalar((lineStarts[i] ?? 0) + l.indexOf('#'))) break;
    const reason = comment(i, 0);
    if (reason) return reason;
  }
  return undefined;
}

/**
 * The top-level `include:` entries (a path, or {path, env_file, project_directory}; path and env_file may be
 * lists), interpolated and made absolute. Remote includes (git or OCI) cannot be read here: a usage error, since
 * the images they bring in would otherwise go unchecked.
 */
function includesOf(root: YAMLMap, file: string, env: Record<string, string | undefined>, lineCounter: LineCounter): ComposeInclude[] {
  const node = root.get('include', true) as Node | undefined;
  if (node === undefined || node === null) return [];
  if (!isSeq(node)) throw new UsageError(`invalid compose file ${file}: include must be a list`);
  const dir = dirname(resolve(file));
  const out: ComposeInclude[] = [];
  const text = (n: unknown, what: string): string => {
    if (!isScalar(n) || n.value === null || n.value === undefined) throw new UsageError(`invalid compose file ${file}: include ${what} must be a string`);
    const r = interpolate(String(n.value), env);
    if (r.errors.length) throw new UsageError(`invalid compose file ${file}: include ${what} ${String(n.value)}: ${r.errors.join('; ')}`);
    return r.value;
  };
  const list = (n: unknown, what: string): string[] => (isSeq(n) ? n.items.map((i) => text(i, what)) : [text(n, what)]);
  for (const item of node.items) {
    const at = lineCounter.linePos((item as Node).range?.[0] ?? 0);
    const entry = isMap(item) ? item : undefined;
    const paths = entry ? list(entry.get('path', true), 'path') : [text(item, 'path')];
    const envFiles = entry?.has('env_file') ? list(entry.get('env_file', true), 'env_file') : [];
    const projectDir = entry?.has('project_directory') ? resolve(dir, text(entry.get('project_directory', true), 'project_directory')) : undefined;
    for (const p of paths) {
      if (/^[a-z][a-z0-9+.-]*:\/\/|^git@/i.test(p)) {
        throw new UsageError(`${file}:${at.line}:${at.col}: include of ${p}: a remote compose file cannot be checked here; check it where it is kept`);
      }
      const abs = resolve(dir, p);
      out.push({
        file: abs,
        projectDir: projectDir ?? dirname(abs),
        ...(envFiles.length ? { envFile: resolve(dir, envFiles.at(-1)!) } : {}),
        line: at.line,
        col: at.col,
      });
    }
  }
  return out;
}

/** Parse compose text: every service's image with its position. Invalid YAML is a UsageError (exit 2). */
export function composeImagesFromText(text: string, file: string, env: Record<string, string | undefined>): ComposeFile {
  const lineCounter = new LineCounter();
  const doc = parseDocument(text, { lineCounter, merge: true, prettyErrors: false, uniqueKeys: true });
  if (doc.errors.length > 0) {
    throw new UsageError(
      `invalid YAML in ${file}`,
      doc.errors.map((e) => {
        // linePos is filled only with prettyErrors (which rewrites the message): the offset gives the same place.
        const at = e.linePos?.[0] ?? lineCounter.linePos(e.pos[0]);
        return `${file}:${at.line}:${at.col}: ${e.message.split('\n')[0]}`;
      }),
    );
  }
  // The yaml package leaves an alias to no anchor out of doc.errors; Compose refuses the file.
  const unresolved: string[] = [];
  const scalarRanges: [number, number][] = [];
  visit(doc, {
    Alias(_, node) {
      if (node.resolve(doc) === undefined) {
        const at = lineCounter.linePos(node.range?.[0] ?? 0);
        unresolved.push(`${file}:${at.line}:${at.col}: alias *${node.source} names no anchor`);
      }
    },
    Scalar(_, node) {
      if (node.range) scalarRanges.push([node.range[0], node.range[1]]);
    },
  });
  if (unresolved.length) throw new UsageError(`invalid YAML in ${file}`, unresolved);
  const inScalar = (offset: number) => scalarRanges.some(([a, b]) => offset >= a && offset < b);
  const lines = text.split('\n');
  const lineStarts: number[] = [];
  for (let i = 0, at = 0; i < lines.length; at += lines[i]!.length + 1, i++) lineStarts.push(at);
  const images: ComposeImage[] = [];
  const root = doc.contents;
  if (root === null || root === undefined) return { file, text, images, includes: [] };
  if (!isMap(root)) throw new UsageError(`invalid compose file ${file}: the top level must be a mapping`);
  const includes = includesOf(root, file, env, lineCounter);
  const services = root.get('services', true) as Node | undefined;
  if (services === undefined || services === null) return { file, text, images, includes };
  if (!isMap(services)) throw new UsageError(`invalid compose file ${file}: services must be a mapping`);
  for (const pair of services.items) {
    const service = isScalar(pair.key) ? String(pair.key.value) : String(pair.key);
    const keyPos = lineCounter.linePos(isScalar(pair.key) && pair.key.range ? pair.key.range[0] : 0);
    const svc = isAlias(pair.value) ? pair.value.resolve(doc) : pair.value;
    if (!isMap(svc)) {
      images.push({ file, service, interpolationErrors: [], line: keyPos.line, col: keyPos.col, style: 'none', builds: false });
      continue;
    }
    const builds = svc.has('build') || mergeSources(svc, doc).some((m) => m.has('build'));
    const found = findImageNode(svc, doc);
    if (!found || !isScalar(found.node) || found.node.value === null || found.node.value === undefined) {
      const ext = extendsOf(svc, file);
      const inherits = !ext && OVERRIDE_FILE.test(basename(file)) ? 'override file' : undefined;
      images.push({
        file,
        service,
        interpolationErrors: [],
        line: keyPos.line,
        col: keyPos.col,
        style: 'none',
        builds,
        ...(inherits ? { inherits } : {}),
        ...(ext ? { extends: ext } : {}),
        ...(ext?.file ? { extendsFile: ext.file } : {}),
      });
      continue;
    }
    const node = found.node;
    const raw = String(node.value);
    const r = interpolate(raw, env);
    // Position of what the reader sees: the alias or merge source for indirect values, the value itself otherwise.
    const shown = found.via === 'alias' ? (svc.get('image', true) as Node) : node;
    const start = shown.range?.[0] ?? 0;
    const pos = lineCounter.linePos(start);
    const valueEnd = node.range?.[1];
    const endPos = valueEnd !== undefined && found.via === 'direct' ? lineCounter.linePos(valueEnd) : undefined;
    const todo = todoReason(lines, lineStarts, inScalar, pos.line - 1, endPos && endPos.line === pos.line ? endPos.col - 1 : undefined);
    images.push({
      file,
      service,
      raw,
      value: r.value,
      interpolationErrors: r.errors,
      line: pos.line,
      col: pos.col,
      ...(found.via === 'direct' && node.range ? { range: [node.range[0], node.range[1]] as [number, number] } : {}),
      style: found.via === 'direct' ? styleOf(node) : found.via,
      builds,
      ...(todo ? { todoDigest: todo } : {}),
    });
  }
  return { file, text, images, includes };
}

/**
 * Compose files named like compose.override.yaml are laid over a base file (Compose reads compose.override.yaml
 * by itself): a service there may change its environment only, its image is the base file's.
 */
export const OVERRIDE_FILE = /(?:^|[./_-])override(?:[./_-][^/]*)?\.ya?ml$/;

/** `extends: name` or `extends: {service, file}` of a service, the file made absolute. */
function extendsOf(svc: YAMLMap, file: string): { service: string; file?: string } | undefined {
  const ext = svc.get('extends', true) as Node | undefined;
  if (isScalar(ext) && ext.value) return { service: String(ext.value) };
  if (!isMap(ext) || !ext.get('service')) return undefined;
  const other = ext.get('file');
  return { service: String(ext.get('service')), ...(other ? { file: resolve(dirname(resolve(file)), String(other)) } : {}) };
}

/**
 * Give every service that `extends` another the image it gets from there (followed across files, judged under its
 * own name: a critical service stays critical), and check that an override file's service exists in another file.
 * Broken links (a missing service, a circle, an override of nothing) become inheritError.
 */
export function resolveInherited(files: ComposeFile[]): void {
  const at = (file: string, service: string) => files.find((f) => resolve(f.file) === resolve(file))?.images.find((i) => i.service === service);
  for (const f of files) {
    for (const img of f.images) {
      if (img.extends) {
        const seen = [`${img.service}`];
        let cur: ComposeImage = img;
        let base: ComposeImage | undefined;
        while (cur.extends) {
          const where = cur.extends.file ?? cur.file;
          base = at(where, cur.extends.service);
          if (!base) {
            img.inheritError = `extends ${cur.extends.service}${cur.extends.file ? ` in ${cur.extends.file}` : ''}: no such service`;
            break;
          }
          const key = `${base.service} (${basename(base.file)})`;
          if (seen.includes(key) || base === img) {
            img.inheritError = `extends goes round in a circle: ${[...seen, key].join(' -> ')}`;
            break;
          }
          seen.push(key);
          if (base.raw !== undefined || base.builds) break;
          cur = base;
        }
        if (img.inheritError || !base) continue;
        if (base.builds) img.builds = true;
        if (base.raw !== undefined) {
          Object.assign(img, { raw: base.raw, value: base.value, interpolationErrors: base.interpolationErrors, style: 'extends' as const });
          if (base.todoDigest) img.todoDigest = base.todoDigest;
        }
      } else if (img.inherits === 'override file' && img.raw === undefined && !files.some((o) => o !== f && o.images.some((i) => i.service === img.service))) {
        img.inheritError = 'defined only in an override file, with no image: and no build: (the base compose file must define it)';
      }
    }
  }
}

/** Read a compose file. Unreadable input is a UsageError (exit 2), as is invalid YAML. */
export function readComposeImages(file: string, env: Record<string, string | undefined>): ComposeFile {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (err) {
    throw new UsageError(`cannot read ${file}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`);
  }
  return composeImagesFromText(text, file, env);
}
