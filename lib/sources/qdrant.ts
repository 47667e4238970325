// Qdrant over its REST API (DESIGN.md §6): a snapshot per collection, streamed to the set and checked against the
// server's sha256, the server copy deleted afterwards; aliases recorded and restored; restore by upload with
// priority=snapshot and the checksum, refused across Qdrant minor versions and into non-empty collections.
import { createHash, randomBytes } from 'node:crypto';
import { createReadStream, createWriteStream } from 'node:fs';
import { mkdir, rm, stat } from 'node:fs/promises';
import { request as httpRequest, type IncomingMessage } from 'node:http';
import { request as httpsRequest } from 'node:https';
import { basename, join } from 'node:path';
import { Readable, Transform } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import type { ReadableStream as WebReadableStream } from 'node:stream/web';
import type { Config } from '../config.ts';
import { artifactPath, type Artifact } from '../backup-set.ts';
import { parseDuration } from '../duration.ts';
import { OpsError, RefusedError, StepError, UsageError, VerifyError } from '../errors.ts';
import { formatDuration } from '../output.ts';
import { setEntry, type BackupResult, type Counts, type RestorePlan, type Source, type SourceContext } from './types.ts';

export type QdrantConfig = NonNullable<NonNullable<Config['sources']>['qdrant']>;

/** A multi-GB snapshot is created, downloaded or uploaded in one request: the default leaves room for that. */
export const DEFAULT_TIMEOUT = '2h';
/** Requests that only read or change metadata never need long. */
const META_TIMEOUT_MS = 60_000;

/**
 * File name for a collection's snapshot: readable, never a path (names may hold "/" or ".."), short enough for any
 * filesystem, one name per collection. A short name's escaped form holds no "." (escaped as %2E); a long one is cut
 * and its hash added after a ".", so no short name can produce a long name's file.
 */
export function snapshotFileName(collection: string): string {
  const safe = encodeURIComponent(collection).replace(/\./g, '%2E');
  if (safe.length <= 200) return `${safe}.snapshot`;
  return `${safe.slice(0, 150)}.${createHash('sha256').update(collection).digest('hex').slice(0, 16)}.snapshot`;
}

/** "1.16.2" (or "v1.16.2-rc1") -> "1.16"; undefined when the text is not a version. */
export function minorVersion(version: string): string | undefined {
  const m = /^v?(\d+)\.(\d+)(?:\.|$|-)/.exec(version.trim());
  return m ? `${Number(m[1])}.${Number(m[2])}` : undefined;
}

/** Why a set taken on `setVersion` must not be restored onto `targetVersion`; undefined when it may. */
export function versionMismatch(setVersion: string, targetVersion: string): string | undefined {
  const a = minorVersion(setVersion);
  const b = minorVersion(targetVersion);
  if (a && a === b) return undefined;
  // Snapshots restore only onto the same minor version (DESIGN.md §6).
  return `the set was taken from Qdrant ${setVersion}, the target runs ${targetVersion}: a snapshot restores only onto the same minor version`;
}

interface Alias {
  alias_name: string;
  collection_name: string;
}

interface CollectionRecord {
  name: string;
  /** Artifact path of its snapshot. */
  file: string;
  points: number;
  /** Of the downloaded file (equal to the server's checksum when it sent one). */
  sha256: string;
  /** config.params.vectors and sparse_vectors as the server reported them. */
  vectors: unknown;
  sparseVectors: unknown;
  snapshot: { name: string; creation_time: string | null; size: number; checksum: string | null };
}

interface QdrantDetails {
  serverVersion: string;
  collections: CollectionRecord[];
  /** Aliases pointing at the collections in this set (collection snapshots do not hold them). */
  aliases: Alias[];
}

interface RestoreTarget {
  name: string;
  target: string;
  file: string;
  sha256: string;
  existed: boolean;
}

interface QdrantRestoreData {
  targets: RestoreTarget[];
  aliasActions: ({ delete_alias: { alias_name: string } } | { create_alias: Alias })[];
  scratch: boolean;
}

/** An HTTP answer other than 2xx, or a request that never got one. The message never holds the api key. */
export class QdrantRequestError extends Error {
  constructor(
    message: string,
    readonly status?: number,
  ) {
    super(message);
  }
}

interface CallOptions {
  query?: Record<string, string>;
  json?: unknown;
  /** Snapshot create, download and upload: the configured timeout instead of the metadata one. */
  long?: boolean;
}

/** The REST calls we make, with the api key as a header and a timeout on each request. */
export class QdrantApi {
  private readonly base: string;
  constructor(
    url: string,
    private readonly apiKey: string | undefined,
    private readonly timeoutMs: number,
    private readonly signal?: AbortSignal,
  ) {
    this.base = url.replace(/\/+$/, '');
  }

  private headers(): Record<string, string> {
    return this.apiKey ? { 'api-key': this.apiKey } : {};
  }

  /** The same API without the interrupt (timeouts kept): for deletes that must still happen after Ctrl-C. */
  uninterruptible(): QdrantApi {
    return this.signal ? new QdrantApi(this.base, this.apiKey, this.timeoutMs) : this;
  }

  private abortSignal(ms: number): AbortSignal {
    return this.signal ? AbortSignal.any([this.signal, AbortSignal.timeout(ms)]) : AbortSignal.timeout(ms);
  }

  private async request(method: string, path: string, opts: CallOptions = {}): Promise<Response> {
    const url = new URL(this.base + path);
    for (const [k, v] of Object.entries(opts.query ?? {})) url.searchParams.set(k, v);
    const headers = this.headers();
    let body: string | undefined;
    if (opts.json !== undefined) {
      headers['content-type'] = 'application/json';
      body = JSON.stringify(opts.json);
    }
    const ms = opts.long ? this.timeoutMs : Math.min(this.timeoutMs, META_TIMEOUT_MS);
    const signal = this.abortSignal(ms);
    let res: Response;
    try {
      res = await fetch(url, { method, headers, body, signal });
    } catch (err) {
      throw this.failure(method, path, err, ms);
    }
    if (!res.ok) {
      const text = await res.text().catch(() => '');
      throw new QdrantRequestError(`${method} ${path}: HTTP ${res.status}${errorText(text) ? `: ${errorText(text)}` : ''}`, res.status);
    }
    return res;
  }

  private failure(method: string, path: string, err: unknown, ms: number): Error {
    if (this.signal?.aborted) return this.signal.reason instanceof Error ? this.signal.reason : new Error(String(this.signal.reason));
    const e = err as Error & { cause?: Error };
    // fetch rejects with the TimeoutError itself, node:http with an AbortError caused by it.
    if (e.name === 'TimeoutError' || e.cause?.name === 'TimeoutError') {
      const which = ms === this.timeoutMs ? 'sources.qdrant.timeout' : 'the limit for metadata requests';
      return new QdrantRequestError(`${method} ${path}: no answer within ${formatDuration(ms)} (${which})`);
    }
    return new QdrantRequestError(`${method} ${path}: ${e.message}${e.cause?.message ? `: ${e.cause.message}` : ''}`);
  }

  private async json(res: Response, method: string, path: string): Promise<unknown> {
    const text = await res.text();
    try {
      return JSON.parse(text) as unknown;
    } catch {
      throw new QdrantRequestError(`${method} ${path}: the answer is not JSON (is ${this.base} Qdrant?): ${text.slice(0, 120)}`);
    }
  }

  /** The `result` of a JSON answer (undefined for a 202 "accepted" answer, which has none). */
  async call<T>(method: string, path: string, opts: CallOptions = {}): Promise<T | undefined> {
    const res = await this.request(method, path, opts);
    return ((await this.json(res, method, path)) as { result?: T }).result;
  }

  async version(): Promise<string> {
    // GET / answers VersionInfo itself, not wrapped in `result`.
    const res = await this.request('GET', '/');
    const info = (await this.json(res, 'GET', '/')) as { version?: string };
    if (typeof info.version !== 'string') throw new QdrantRequestError('GET /: no version in the answer (is this Qdrant?)');
    return info.version;
  }

  async collections(): Promise<string[]> {
    const r = await this.call<{ collections: { name: string }[] }>('GET', '/collections');
    // An answer that lists nothing is not "no collections": a backup would publish an empty set as a success.
    if (!Array.isArray(r?.collections) || !r.collections.every((c) => typeof c?.name === 'string')) {
      throw new QdrantRequestError('GET /collections: no list of collections in the answer (is this Qdrant?)');
    }
    return r.collections.map((c) => c.name);
  }

  /** Collection info, or undefined when it does not exist. */
  async collection(name: string): Promise<{ config?: { params?: { vectors?: unknown; sparse_vectors?: unknown } } } | undefined> {
    try {
      return await this.call('GET', `/collections/${enc(name)}`);
    } catch (err) {
      if (err instanceof QdrantRequestError && err.status === 404) return undefined;
      throw err;
    }
  }

  /** Exact point count (CollectionInfo.points_count is an estimate). */
  async count(name: string): Promise<number> {
    const r = await this.call<{ count: number }>('POST', `/collections/${enc(name)}/points/count`, { json: { exact: true } });
    if (typeof r?.count !== 'number') throw new QdrantRequestError(`POST /collections/${enc(name)}/points/count: no count in the answer`);
    return r.count;
  }

  async aliases(): Promise<Alias[]> {
    const r = await this.call<{ aliases: Alias[] }>('GET', '/aliases');
    if (!Array.isArray(r?.aliases)) throw new QdrantRequestError('GET /aliases: no list of aliases in the answer (is this Qdrant?)');
    return r.aliases;
  }

  /** Stream a download to `file` (created 0600, must not exist), hashing on the way: never the whole body in memory. */
  async download(path: string, file: string): Promise<{ size: number; sha256: string }> {
    const res = await this.request('GET', path, { long: true });
    if (!res.body) throw new QdrantRequestError(`GET ${path}: empty answer`);
    const hash = createHash('sha256');
    let size = 0;
    const tap = new Transform({
      transform(chunk: Buffer, _enc, cb) {
        hash.update(chunk);
        size += chunk.length;
        cb(null, chunk);
      },
    });
    try {
      await pipeline(Readable.fromWeb(res.body as WebReadableStream<Uint8Array>), tap, createWriteStream(file, { mode: 0o600, flags: 'wx' }));
    } catch (err) {
      throw this.failure('GET', path, err, this.timeoutMs);
    }
    return { size, sha256: hash.digest('hex') };
  }

  /**
   * Recover a collection from a snapshot file, sent as multipart field `snapshot` (DESIGN.md §6). Through node:http,
   * not fetch: undici reads a request body into memory as fast as it can, whatever its source (nodejs/undici#4058;
   * measured here: a 1.5 GB file-backed FormData upload peaked at 1.6 GB RSS), so a multi-GB snapshot would not fit.
   */
  async upload(collection: string, file: string, sha256: string): Promise<void> {
    const path = `/collections/${enc(collection)}/snapshots/upload`;
    const url = new URL(this.base + path);
    // priority=snapshot: without it a recovery into a new collection can come back empty (DESIGN.md §6).
    for (const [k, v] of Object.entries({ priority: 'snapshot', checksum: sha256, wait: 'true' })) url.searchParams.set(k, v);
    const boundary = `llc-ops-${randomBytes(12).toString('hex')}`;
    // The file name is ours (snapshotFileName): URL-safe characters only, nothing to escape in the header.
    const head = Buffer.from(`--${boundary}\r\nContent-Disposition: form-data; name="snapshot"; filename="${basename(file)}"\r\nContent-Type: application/octet-stream\r\n\r\n`);
    const tail = Buffer.from(`\r\n--${boundary}--\r\n`);
    const size = (await stat(file)).size;
    const req = (url.protocol === 'https:' ? httpsRequest : httpRequest)(url, {
      method: 'POST',
      headers: { ...this.headers(), 'content-type': `multipart/form-data; boundary=${boundary}`, 'content-length': String(head.length + size + tail.length) },
      signal: this.abortSignal(this.timeoutMs),
    });
    const answered = new Promise<IncomingMessage>((resolve, reject) => {
      req.once('response', resolve);
      req.once('error', reject);
    });
    // A server that answers early (a refusal) may close before the body is sent: its answer is what counts then.
    let sendError: unknown;
    const sent = pipeline(
      async function* () {
        yield head;
        yield* createReadStream(file, { highWaterMark: 1 << 20 });
        yield tail;
      },
      req,
    ).catch((err: unknown) => {
      sendError = err;
    });
    let res: IncomingMessage;
    let text = '';
    try {
      res = await answered;
      res.setEncoding('utf8');
      for await (const chunk of res) if (text.length < 1 << 20) text += chunk as string;
    } catch (err) {
      await sent;
      throw this.failure('POST', path, err, this.timeoutMs);
    }
    await sent;
    const status = res.statusCode ?? 0;
    if (status < 200 || status > 299) throw new QdrantRequestError(`POST ${path}: HTTP ${status}${errorText(text) ? `: ${errorText(text)}` : ''}`, status);
    if (sendError) throw this.failure('POST', path, sendError, this.timeoutMs);
    let result: unknown;
    try {
      result = (JSON.parse(text) as { result?: unknown }).result;
    } catch {
      /* checked below */
    }
    if (result !== true) throw new QdrantRequestError(`POST ${path}: the server did not confirm the recovery (answered without waiting?)`);
  }
}

const enc = (name: string) => encodeURIComponent(name);

/** Qdrant's error text from an error body ({"status":{"error":"..."}}), or the start of a plain-text body. */
function errorText(text: string): string {
  try {
    const doc = JSON.parse(text) as { status?: { error?: string } | string };
    if (typeof doc.status === 'object' && doc.status?.error) return doc.status.error;
  } catch {
    /* not JSON */
  }
  return text.trim().slice(0, 300);
}

/** A StepError naming the step, keeping OpsErrors (refusals, interrupts) as they are. */
function stepFailure(step: string, err: unknown): OpsError {
  if (err instanceof OpsError) return err;
  return new StepError('qdrant', step, err instanceof Error ? err.message : String(err), { cause: err });
}

/** The URL for messages: no userinfo, query or fragment. */
function displayUrl(url: string): string {
  try {
    const u = new URL(url);
    return `${u.protocol}//${u.host}${u.pathname.replace(/\/+$/, '')}`;
  } catch {
    return '(invalid url)';
  }
}

/** Scratch collections of a restore drill (verify-latest --deep): llc_scratch_<set>_<rand>_<i>. */
const SCRATCH_PREFIX = 'llc_scratch_';
export const isScratchCollection = (name: string): boolean => name.startsWith(SCRATCH_PREFIX);

/** Why `url` cannot be the base of Qdrant's REST paths; undefined when it can. */
export function qdrantUrlProblem(url: string): string | undefined {
  let u: URL;
  try {
    u = new URL(url);
  } catch {
    return 'not a URL';
  }
  // The API paths are appended to it: "?x=y" would swallow every one of them into the query.
  if (u.search || url.includes('?')) return 'has a query string: the API paths are appended to it';
  if (u.hash || url.includes('#')) return 'has a fragment: the API paths are appended to it';
  if (u.username || u.password) return 'holds credentials: Qdrant takes apiKey';
  return undefined;
}

export function createQdrantSource(cfg: QdrantConfig): Source {
  const urlProblem = qdrantUrlProblem(cfg.url);
  if (urlProblem) throw new UsageError(`invalid config: sources.qdrant.url ${displayUrl(cfg.url)}: ${urlProblem}`);
  const timeoutMs = parseDuration(cfg.timeout ?? DEFAULT_TIMEOUT);
  const api = (ctx: SourceContext) => new QdrantApi(cfg.url, cfg.apiKey || undefined, timeoutMs, ctx.signal);
  const wanted = cfg.collections === undefined || cfg.collections === 'all' ? 'all' : [...cfg.collections];
  const where = displayUrl(cfg.url);

  const detailsOf = (manifest: Parameters<Source['planRestore']>[2]): { serverVersion: string; details: QdrantDetails } => {
    const rec = manifest.sources.qdrant;
    if (!rec) throw new UsageError(`set ${manifest.id} has no qdrant backup`);
    return { serverVersion: rec.serverVersion, details: rec.details as unknown as QdrantDetails };
  };

  return {
    name: 'qdrant',
    describe: () => `qdrant at ${where}: ${wanted === 'all' ? 'all collections' : wanted.join(', ')}`,

    async backup(ctx, stageDir): Promise<BackupResult> {
      const { out, runner } = ctx;
      const q = api(ctx);
      const { version, names, aliases } = await (async () => {
        const version = await q.version();
        const listed = await q.collections();
        let names: string[];
        if (wanted === 'all') {
          // A restore drill's scratch copy left by a killed verify-latest --deep is not the application's data.
          for (const name of listed.filter(isScratchCollection)) out.warn(`qdrant: collection ${name} is a restore drill's scratch copy left by a run that was killed: not backed up; delete it once no drill is running`);
          names = listed.filter((n) => !isScratchCollection(n));
        } else {
          const missing = wanted.filter((n) => !listed.includes(n));
          if (missing.length) throw new Error(`no collection ${missing.join(', ')} on the server (sources.qdrant.collections)`);
          names = wanted;
        }
        // Collection snapshots do not hold aliases: record those pointing at what we back up (DESIGN.md §6).
        const aliases = (await q.aliases()).filter((a) => names.includes(a.collection_name));
        return { version, names, aliases };
      })().catch((err: unknown) => {
        throw stepFailure('connect', err);
      });
      out.detail(`qdrant ${version} at ${where}: collections ${names.join(', ') || '(none)'}; ${aliases.length} alias${aliases.length === 1 ? '' : 'es'}`);
      if (names.length === 0) out.warn(`qdrant: no collections at ${where}: the set holds no Qdrant data`);
      const details: QdrantDetails = { serverVersion: version, collections: [], aliases };
      const counts: Counts = {};
      const artifacts: Artifact[] = [];
      if (runner.dryRun) {
        for (const name of names) {
          out.plan(`qdrant: POST /collections/${enc(name)}/snapshots?wait=true, stream it to qdrant/${snapshotFileName(name)}, check its sha256 against the server's checksum, DELETE the server copy`);
        }
        if (aliases.length) out.plan(`qdrant: record ${aliases.length} aliases`);
        return { record: { serverVersion: version, counts, details: details as unknown as Record<string, unknown> }, artifacts };
      }
      await mkdir(join(stageDir, 'qdrant'), { recursive: true, mode: 0o700 });
      for (const name of names) {
        const rel = `qdrant/${snapshotFileName(name)}`;
        const file = artifactPath(stageDir, rel);
        const rec = await out.step(
          `qdrant: snapshot ${name}`,
          () => snapshotOne(ctx, q, name, rel, file).catch((err: unknown) => {
            throw stepFailure(`snapshot ${name}`, err);
          }),
          (r) => ({ bytes: r.snapshot.size, note: `${r.points} points` }),
        );
        details.collections.push(rec);
        setEntry(counts, name, { points: rec.points });
        artifacts.push({ path: rel, size: rec.snapshot.size, sha256: rec.sha256, source: 'qdrant', kind: 'qdrant-snapshot', compression: 'none' });
      }
      return { record: { serverVersion: version, counts, details: details as unknown as Record<string, unknown> }, artifacts };
    },

    async verifyArtifacts(_ctx, _setDir, manifest) {
      // The set's own sha256 is checked by the caller; here: every collection has its snapshot, and the file we
      // kept is the one the server described (its checksum), so a manifest edited by hand is caught too.
      const { details } = detailsOf(manifest);
      const problems: string[] = [];
      for (const c of details.collections) {
        const a = manifest.artifacts.find((x) => x.source === 'qdrant' && x.path === c.file);
        if (!a) problems.push(`${c.file}: collection ${c.name} has no artifact in the manifest`);
        else if (c.snapshot.checksum && a.sha256 !== c.snapshot.checksum) problems.push(`${c.file}: sha256 ${a.sha256} is not the server's checksum ${c.snapshot.checksum}`);
      }
      if (problems.length) throw new VerifyError(`qdrant: set ${manifest.id} is inconsistent`, problems);
    },

    async planRestore(ctx, _setDir, manifest, opts): Promise<RestorePlan> {
      const { serverVersion, details } = detailsOf(manifest);
      const q = api(ctx);
      const steps: string[] = [];
      const refusals: string[] = [];
      try {
        const target = await q.version();
        const mismatch = versionMismatch(serverVersion, target);
        if (mismatch && !opts.force) refusals.push(`${mismatch}: pass --force to try anyway`);
        else if (mismatch) steps.push(`restore across versions (--force): ${mismatch}`);
        const existing = new Set(await q.collections());
        const targets: RestoreTarget[] = [];
        for (const [i, c] of details.collections.entries()) {
          const name = opts.scratch ? `${SCRATCH_PREFIX}${opts.scratch}_${i}` : c.name;
          const artifact = manifest.artifacts.find((a) => a.source === 'qdrant' && a.path === c.file);
          if (!artifact) throw new VerifyError(`qdrant: ${c.file}: not in the manifest`);
          const t: RestoreTarget = { name: c.name, target: name, file: c.file, sha256: artifact.sha256, existed: existing.has(name) };
          targets.push(t);
          const upload = `upload ${c.file} (${c.points} points) with priority=snapshot and its checksum`;
          if (!t.existed) {
            steps.push(`${upload} into new collection ${name}`);
            continue;
          }
          const points = await q.count(name);
          if (points > 0 && !opts.force) refusals.push(`collection ${name} is not empty (${points} points): pass --force to replace it`);
          steps.push(points > 0 ? `${upload}, replacing collection ${name} and its ${points} points (Qdrant recovers in place)` : `${upload} into existing empty collection ${name}`);
        }
        const aliasActions: QdrantRestoreData['aliasActions'] = [];
        if (opts.scratch) {
          if (details.aliases.length) steps.push(`aliases are not restored in a drill (${details.aliases.length} in the set)`);
        } else {
          const current = new Map((await q.aliases()).map((a) => [a.alias_name, a.collection_name]));
          for (const a of details.aliases) {
            const now = current.get(a.alias_name);
            if (now === a.collection_name) {
              steps.push(`alias ${a.alias_name} already points to ${a.collection_name}`);
              continue;
            }
            if (now !== undefined) {
              if (!opts.force) refusals.push(`alias ${a.alias_name} points to collection ${now}, the set has it on ${a.collection_name}: pass --force to move it`);
              aliasActions.push({ delete_alias: { alias_name: a.alias_name } });
              steps.push(`move alias ${a.alias_name} from ${now} to ${a.collection_name}`);
            } else {
              steps.push(`create alias ${a.alias_name} -> ${a.collection_name}`);
            }
            aliasActions.push({ create_alias: { alias_name: a.alias_name, collection_name: a.collection_name } });
          }
        }
        if (refusals.length) throw new RefusedError('qdrant: refusing to restore', refusals);
        steps.push('compare the exact point count of every collection with the manifest');
        return { source: 'qdrant', steps, data: { targets, aliasActions, scratch: Boolean(opts.scratch) } satisfies QdrantRestoreData };
      } catch (err) {
        throw stepFailure('plan restore', err);
      }
    },

    async restore(ctx, setDir, _manifest, plan) {
      const { out, runner } = ctx;
      const data = plan.data as QdrantRestoreData;
      const q = api(ctx);
      for (const t of data.targets) {
        const label = `qdrant: restore ${t.name}${t.target !== t.name ? ` into ${t.target}` : ''}`;
        if (runner.dryRun) {
          out.plan(`${label} from ${t.file}`);
          continue;
        }
        await out.step(label, async () => {
          try {
            await q.upload(t.target, artifactPath(setDir, t.file), t.sha256);
          } catch (err) {
            // A collection the failed recovery created goes again; one that existed is left for the operator.
            if (!t.existed) await q.uninterruptible().call('DELETE', `/collections/${enc(t.target)}`).catch(() => {});
            throw stepFailure(`restore ${t.name}`, err);
          }
        });
      }
      if (data.aliasActions.length === 0) return;
      if (runner.dryRun) {
        out.plan(`qdrant: POST /collections/aliases with ${data.aliasActions.length} actions`);
        return;
      }
      await out.step(`qdrant: restore ${data.aliasActions.filter((a) => 'create_alias' in a).length} aliases`, () =>
        q.call('POST', '/collections/aliases', { json: { actions: data.aliasActions } }).catch((err: unknown) => {
          throw stepFailure('restore aliases', err);
        }),
      );
    },

    async countRestored(ctx, plan) {
      const data = plan.data as QdrantRestoreData;
      const q = api(ctx);
      const counts: Counts = {};
      for (const t of data.targets) {
        const points = await q.count(t.target).catch((err: unknown) => {
          throw stepFailure(`count ${t.target}`, err);
        });
        setEntry(counts, t.name, { points });
      }
      return counts;
    },

    async cleanup(ctx, plan) {
      const data = plan.data as QdrantRestoreData;
      if (!data.scratch) return;
      const q = api(ctx).uninterruptible();
      const failed: string[] = [];
      for (const t of data.targets) {
        await q.call('DELETE', `/collections/${enc(t.target)}`).catch((err: Error) => failed.push(`${t.target}: ${err.message}`));
      }
      if (failed.length) throw new StepError('qdrant', 'remove scratch collections', failed.join('; '));
    },
  };
}

/**
 * One collection: counts and config, a snapshot created with wait=true, streamed to `file` and checked against
 * the server's sha256, and the server's copy deleted whatever happens (or they pile up, DESIGN.md §6).
 */
async function snapshotOne(ctx: SourceContext, q: QdrantApi, name: string, rel: string, file: string): Promise<CollectionRecord> {
  const info = await q.collection(name);
  if (!info) throw new Error(`collection ${name} disappeared`);
  const before = await q.count(name);
  // The server may finish a snapshot whose answer we never get (a proxy's 504, our timeout, a cut connection):
  // what is new after a failed request is ours, and is deleted like the one we download.
  const listed = async (api: QdrantApi) => ((await api.call<{ name: string }[]>('GET', `/collections/${enc(name)}/snapshots`)) ?? []).map((x) => x.name);
  const earlier = new Set(await listed(q));
  let snap: { name: string; creation_time?: string | null; size: number; checksum?: string | null } | undefined;
  try {
    snap = await q.call('POST', `/collections/${enc(name)}/snapshots`, { query: { wait: 'true' }, long: true });
    if (!snap?.name) throw new Error('the server answered without a snapshot description (did it ignore wait=true?)');
  } catch (err) {
    const api = q.uninterruptible();
    const orphans = await listed(api).then((names) => names.filter((n) => !earlier.has(n)), () => [] as string[]);
    for (const orphan of orphans) {
      await api.call('DELETE', `/collections/${enc(name)}/snapshots/${enc(orphan)}`, { query: { wait: 'true' } }).then(
        () => ctx.out.warn(`qdrant: deleted server snapshot ${orphan} of ${name}, made by the request that failed`),
        (e: Error) => ctx.out.warn(`qdrant: could not delete server snapshot ${orphan} of ${name}: ${e.message} (delete it by hand, or it takes disk space)`),
      );
    }
    throw err;
  }
  try {
    const after = await q.count(name);
    if (after !== before) {
      ctx.out.warn(`qdrant: ${name} changed while the snapshot was taken (${before} -> ${after} points): the recorded count may not match a restore; stop writers during backups`);
    }
    const got = await q.download(`/collections/${enc(name)}/snapshots/${enc(snap.name)}`, file);
    if (snap.checksum && got.sha256 !== snap.checksum) {
      await rm(file, { force: true });
      throw new Error(`download of ${snap.name} does not match the server's checksum (sha256 ${got.sha256}, server says ${snap.checksum})`);
    }
    if (!snap.checksum) {
      // Qdrant before 1.7 sends no checksum: the size is all there is to compare.
      if (got.size !== snap.size) throw new Error(`download of ${snap.name} is ${got.size} bytes, the server says ${snap.size}`);
      ctx.out.warn(`qdrant: the server sent no checksum for ${snap.name}: only its size was checked`);
    }
    return {
      name,
      file: rel,
      points: after,
      sha256: got.sha256,
      vectors: info.config?.params?.vectors ?? null,
      sparseVectors: info.config?.params?.sparse_vectors ?? null,
      snapshot: { name: snap.name, creation_time: snap.creation_time ?? null, size: got.size, checksum: snap.checksum ?? null },
    };
  } finally {
    // After Ctrl-C too: a snapshot left on the server takes its disk until someone deletes it.
    await q.uninterruptible().call('DELETE', `/collections/${enc(name)}/snapshots/${enc(snap.name)}`, { query: { wait: 'true' } }).catch((err: Error) =>
      ctx.out.warn(`qdrant: could not delete server snapshot ${snap.name} of ${name}: ${err.message} (delete it by hand, or it takes disk space)`),
    );
  }
}
