// S3 (MinIO today, any S3 store tomorrow): every object of the configured buckets streamed into files named by
// their sha256, keys and metadata in one index per bucket; unchanged objects hard-linked from the previous set;
// restore puts every object back byte-exact with Content-Type and user metadata. Facts: DESIGN.md §6 "S3 / MinIO".
import { copyFileSync, createReadStream, existsSync, linkSync, lstatSync, mkdirSync, renameSync, unlinkSync, writeFileSync } from 'node:fs';
import { mkdir, open, rm, writeFile, type FileHandle } from 'node:fs/promises';
import type { Stats } from 'node:fs';
import { createInterface } from 'node:readline';
import { createHash } from 'node:crypto';
import { dirname, join } from 'node:path';
import http, { type IncomingMessage } from 'node:http';
import https from 'node:https';
import { setTimeout as sleep } from 'node:timers/promises';
import type { S3Client } from '@aws-sdk/client-s3';
import type { Config } from '../config.ts';
import { artifactPath, describeArtifact, type Artifact, type Manifest } from '../backup-set.ts';
import { RefusedError, StepError, UsageError, VerifyError } from '../errors.ts';
import { sha256File } from '../fs-util.ts';
import { formatBytes } from '../output.ts';
import { forEachBounded } from '../pool.ts';
import { amzDate, createSigner, s3KeyPath, uriEncode, UNSIGNED_PAYLOAD } from '../sigv4.ts';
import {
  bucketDirName,
  bucketRestoreStep,
  displayEndpoint,
  indexPath,
  isValidBucketName,
  objectPath,
  parseIndexLine,
  parseListPage,
  xmlUnescape,
  type ListPage,
  planParts,
  scratchBucketName,
  isScratchBucket,
  showKey,
  unchanged,
  type IndexEntry,
  type Listed,
  type S3Details,
  type TargetState,
} from './s3-layout.ts';
import { ownEntry, setEntry, type BackupResult, type Counts, type RestorePlan, type Source, type SourceContext } from './types.ts';

export type S3Config = NonNullable<NonNullable<Config['sources']>['s3']>;

export interface S3Tuning {
  /**
   * Objects larger than this are uploaded in parts. PutObject takes up to 5 GiB on S3; s3rver lacks the
   * multipart-listing calls that SDK upload helpers use (DESIGN.md §6), so we use plain PutObject up to the limit
   * and only the three basic multipart calls above it.
   */
  multipartAbove: number;
  partSize: number;
}

const DEFAULT_TUNING: S3Tuning = { multipartAbove: 5 * 2 ** 30, partSize: 64 * 2 ** 20 };
const PROBLEMS_SHOWN = 50;
/** Objects up to this size are held in memory (at most `concurrency` of them) and written with one call. */
const IN_MEMORY = 2 ** 20;

type Sdk = typeof import('@aws-sdk/client-s3');

interface Store {
  /**
   * The AWS SDK, loaded on first use: restores and bucket management need it; a backup of configured buckets does
   * not (listing and GetObject are signed requests of our own), so it starts without loading it.
   */
  sdk(): Promise<{ client: S3Client; m: Sdk }>;
  /** GetObject without the SDK: the 2xx response of one signed GET, or an error shaped like the SDK's. */
  getObject(bucket: string, key: string): Promise<IncomingMessage>;
  /** One ListObjectsV2 page (encoding-type=url), retried like GetObject. */
  listPage(bucket: string, token?: string, maxKeys?: number): Promise<ListPage>;
  /** HeadBucket: true when it exists (2xx), false on 404, an error otherwise. */
  headBucket(bucket: string): Promise<boolean>;
  /** The Server header of the first response that had one (MinIO says "MinIO"). */
  server: () => string | undefined;
  close(): void;
}

/** What an HTTP status means when the answer has no body to say it (HEAD requests). */
const STATUS_HINT: Record<number, string> = {
  301: 'redirected: wrong endpoint or region (sources.s3.region)',
  400: 'bad request: check sources.s3.region and forcePathStyle',
  403: 'access denied: check sources.s3.accessKey, secretKey and what the key may do',
  404: 'not found',
};

/** The SDK's error as one line: "NoSuchBucket: The specified bucket does not exist (HTTP 404)". */
function sdkMessage(err: unknown): string {
  const e = err as { name?: string; message?: string; $metadata?: { httpStatusCode?: number } };
  const status = e.$metadata?.httpStatusCode;
  if (status && (!e.name || e.name === 'Unknown' || e.name === 'NotFound' || e.name === 'Forbidden') && STATUS_HINT[status]) return `${STATUS_HINT[status]} (HTTP ${status})`;
  // A refusal the store explains (InvalidAccessKeyId, SignatureDoesNotMatch, AccessDenied) still says where to look.
  const next = status === 403 ? ': check sources.s3.accessKey, secretKey and what the key may do' : '';
  return `${e.name ?? 'Error'}: ${e.message ?? String(err)}${status ? ` (HTTP ${status})` : ''}${next}`;
}

/**
 * A non-2xx answer to our own GET, shaped like the SDK's service errors (name = the S3 error code, $metadata with the
 * status) so that sdkMessage words it the same way.
 */
class S3HttpError extends Error {
  readonly $metadata: { httpStatusCode: number };
  constructor(name: string, message: string, status: number) {
    super(message);
    this.name = name;
    this.$metadata = { httpStatusCode: status };
  }
}

/** The S3 error document of a failed request (or none: a proxy's HTML, an empty body) as an SDK-like error. */
export function s3ErrorOf(status: number, body: string): S3HttpError {
  const code = /<Code>([^<]*)<\/Code>/.exec(body)?.[1];
  const message = /<Message>([^<]*)<\/Message>/.exec(body)?.[1];
  if (code) return new S3HttpError(xmlUnescape(code), message !== undefined ? xmlUnescape(message) : code, status);
  return new S3HttpError(status === 404 ? 'NotFound' : status === 403 ? 'Forbidden' : 'Unknown', 'UnknownError', status);
}

const RETRYABLE_CODES = new Set(['ECONNRESET', 'EPIPE', 'ECONNREFUSED', 'ETIMEDOUT', 'EAI_AGAIN', 'ECONNABORTED', 'ENETUNREACH', 'EHOSTUNREACH', 'ERR_STREAM_PREMATURE_CLOSE']);
const GET_ATTEMPTS = 3;

/** Worth another attempt: a dropped or refused connection, a cut-short body, a 5xx, throttling. */
export function retryableGet(err: unknown): boolean {
  const e = err as { code?: string; name?: string; retryable?: boolean; $metadata?: { httpStatusCode?: number } };
  const status = e.$metadata?.httpStatusCode;
  if (status !== undefined) return status >= 500 || status === 429 || e.name === 'SlowDown' || e.name === 'RequestTimeout';
  return e.retryable === true || (e.code !== undefined && RETRYABLE_CODES.has(e.code));
}

/** fn, again after a short backoff when it fails in a way worth retrying (retryableGet), at most GET_ATTEMPTS times. */
async function withRetries<T>(signal: AbortSignal, fn: () => Promise<T>): Promise<T> {
  for (let attempt = 1; ; attempt++) {
    try {
      return await fn();
    } catch (err) {
      if (attempt >= GET_ATTEMPTS || signal.aborted || !retryableGet(err)) throw err;
      await sleep(100 * 4 ** (attempt - 1) * (0.5 + Math.random()));
    }
  }
}

const statusOf = (err: unknown) => (err as { $metadata?: { httpStatusCode?: number } }).$metadata?.httpStatusCode;

/** Socket idle limit of a GET: a multi-GB object takes as long as it takes; a stalled socket does not. */
const SOCKET_TIMEOUT = 300_000;

function openStore(cfg: S3Config, ctx: SourceContext, concurrency: number): Store {
  // The access key is not matched by the config loader's secret-key pattern; it is still a credential.
  ctx.out.redactor.add(cfg.accessKey);
  const region = cfg.region ?? 'us-east-1';
  const pathStyle = cfg.forcePathStyle ?? true;
  // Objects are fetched and buckets listed with signed requests of our own on keep-alive sockets: the SDK's
  // per-request middleware chain cost 0.6 ms CPU per object against 0.25 ms for a signed node:http GET, which limits
  // a bucket of many small objects, and loading the SDK costs a backup 0.1 s (docs/performance.md). Restores and
  // bucket management use the SDK, loaded on first use.
  const base = new URL(cfg.endpoint);
  const basePath = base.pathname.replace(/\/+$/, '');
  const secure = base.protocol === 'https:';
  const baseHostname = base.hostname.replace(/^\[(.*)\]$/, '$1'); // an IPv6 literal without its brackets
  const agent = secure ? new https.Agent({ keepAlive: true, maxSockets: concurrency + 2 }) : new http.Agent({ keepAlive: true, maxSockets: concurrency + 2 });
  const sign = createSigner({ accessKeyId: cfg.accessKey, secretAccessKey: cfg.secretKey, region, service: 's3' });
  let server: string | undefined;
  /** A signed request to the bucket (key null) or an object; query as name -> value. Resolves with a 2xx response. */
  const request = (method: 'GET' | 'HEAD', bucket: string, key: string | null, query: Record<string, string> = {}): Promise<IncomingMessage> => {
    if (ctx.signal.aborted) return Promise.reject(ctx.signal.reason instanceof Error ? ctx.signal.reason : new Error('interrupted'));
    // Virtual-host style only when the config asks for it (forcePathStyle: false); the SDK does the same.
    const host = pathStyle ? base.host : `${bucket}.${base.host}`;
    const keyPath = key === null ? '' : s3KeyPath(key);
    const path = pathStyle ? `${basePath}/${uriEncode(bucket)}${key === null ? '' : `/${keyPath}`}` : `${basePath}/${keyPath}`;
    const canonicalQuery = Object.keys(query)
      .sort()
      .map((k) => `${uriEncode(k)}=${uriEncode(query[k]!)}`)
      .join('&');
    const headers: Record<string, string> = { host, 'x-amz-content-sha256': UNSIGNED_PAYLOAD, 'x-amz-date': amzDate(new Date()) };
    headers.authorization = sign({ method, path: path || '/', query: canonicalQuery, headers, payloadHash: UNSIGNED_PAYLOAD });
    return new Promise((resolve, reject) => {
      const req = (secure ? https : http).request(
        {
          hostname: pathStyle ? baseHostname : `${bucket}.${baseHostname}`,
          port: base.port || undefined,
          method,
          path: `${path || '/'}${canonicalQuery ? `?${canonicalQuery}` : ''}`,
          headers,
          agent,
          timeout: SOCKET_TIMEOUT,
        },
        (res) => {
          if (!server && typeof res.headers.server === 'string') server = res.headers.server;
          const status = res.statusCode ?? 0;
          if (status >= 200 && status < 300) return resolve(res);
          // The error document is small; more than 64 KiB of it is not S3 talking.
          let body = '';
          res.setEncoding('utf8');
          res.on('data', (d: string) => {
            if (body.length < 65_536) body += d;
          });
          res.on('end', () => reject(s3ErrorOf(status, body)));
          res.on('error', reject);
        },
      );
      req.on('timeout', () => req.destroy(Object.assign(new Error(`no data from ${displayEndpoint(cfg.endpoint)} for ${SOCKET_TIMEOUT / 1000} s`), { code: 'ETIMEDOUT' })));
      req.on('error', reject);
      req.end();
    });
  };
  const getObject = (bucket: string, key: string) => request('GET', bucket, key);
  const listPageOnce = async (bucket: string, token: string | undefined, maxKeys: number | undefined): Promise<ListPage> => {
    const query: Record<string, string> = { 'list-type': '2', 'encoding-type': 'url' };
    if (token !== undefined) query['continuation-token'] = token;
    if (maxKeys !== undefined) query['max-keys'] = String(maxKeys);
    const res = await request('GET', bucket, null, query);
    const chunks: Buffer[] = [];
    let size = 0;
    for await (const chunk of res) {
      size += (chunk as Buffer).length;
      // A page lists at most 1,000 keys of at most 1 KiB each, escaped: far below this.
      if (size > 64 * 2 ** 20) throw new Error(`a listing page of bucket ${bucket} is larger than 64 MiB`);
      chunks.push(chunk as Buffer);
    }
    return parseListPage(Buffer.concat(chunks).toString('utf8'));
  };
  const listPage = (bucket: string, token?: string, maxKeys?: number): Promise<ListPage> => withRetries(ctx.signal, () => listPageOnce(bucket, token, maxKeys));
  const headBucket = async (bucket: string): Promise<boolean> => {
    try {
      (await request('HEAD', bucket, null)).resume();
      return true;
    } catch (err) {
      if (statusOf(err) === 404) return false;
      throw err;
    }
  };
  let loaded: Promise<{ client: S3Client; m: Sdk }> | undefined;
  const makeClient = (m: Sdk): S3Client => {
    const created = new m.S3Client({
      endpoint: cfg.endpoint,
      region,
      forcePathStyle: pathStyle,
      credentials: { accessKeyId: cfg.accessKey, secretAccessKey: cfg.secretKey },
      // Stores that don't speak the newer checksum framing reject streamed uploads otherwise (DESIGN.md §6).
      requestChecksumCalculation: 'WHEN_REQUIRED',
      responseChecksumValidation: 'WHEN_REQUIRED',
      // No overall request timeout: a multi-GB object takes as long as it takes; a stalled socket does not.
      requestHandler: { connectionTimeout: 30_000, socketTimeout: 300_000, httpAgent: { keepAlive: true, maxSockets: concurrency + 4 } },
      // One resolved middleware chain per command type instead of one per request (the SDK's per-request CPU is what
      // limits a bucket of many small objects, docs/performance.md). It applies only to sends without options, so an
      // interrupt aborts by destroying the client's sockets instead of a per-request abortSignal.
      cacheMiddleware: true,
    });
    created.middlewareStack.add(
      (next) => async (args) => {
        const r = await next(args);
        const h = (r.response as { headers?: Record<string, string> }).headers;
        if (!server && h?.server) server = h.server;
        return r;
      },
      { step: 'deserialize', name: 'llcServerHeader' },
    );
    return created;
  };
  let client: S3Client | undefined;
  const abort = () => {
    client?.destroy();
    agent.destroy();
  };
  ctx.signal.addEventListener('abort', abort, { once: true });
  return {
    sdk() {
      loaded ??= import('@aws-sdk/client-s3').then((m) => {
        client = makeClient(m);
        return { client, m };
      });
      return loaded;
    },
    getObject,
    listPage,
    headBucket,
    server: () => server,
    close() {
      ctx.signal.removeEventListener('abort', abort);
      client?.destroy();
      agent.destroy();
    },
  };
}

/**
 * Every object of a bucket, page by page. The next page is requested while this one is consumed (one page ahead:
 * a listing page can take a store as long as a hundred small GETs), never more.
 */
async function* listObjects(s: Store, bucket: string, first?: Promise<ListPage>): AsyncGenerator<Listed> {
  let next = first ?? requestPage(s, bucket);
  for (;;) {
    const page = await next;
    if (page.truncated && !page.token) throw new Error(`listing of bucket ${bucket} is truncated without a continuation token`);
    const token = page.truncated ? page.token : undefined;
    if (token) next = requestPage(s, bucket, token);
    yield* page.objects;
    if (!token) return;
  }
}

/** A page of a bucket's listing, requested now and awaited later. */
function requestPage(s: Store, bucket: string, token?: string): Promise<ListPage> {
  const page = s.listPage(bucket, token);
  page.catch(() => {}); // awaited by whoever lists; one that fails first or stops early must not leave it unhandled
  return page;
}

/** Objects and bytes of a bucket as the store lists them now. */
async function countBucket(s: Store, bucket: string): Promise<{ objects: number; bytes: number }> {
  let objects = 0;
  let bytes = 0;
  for await (const o of listObjects(s, bucket)) {
    objects++;
    bytes += o.size;
  }
  return { objects, bytes };
}

/** The first page of a bucket: is it empty, and if not, how full (for the refusal message). */
async function fullness(s: Store, bucket: string): Promise<{ count: number; more: boolean }> {
  const page = await s.listPage(bucket, undefined, 1000);
  return { count: page.objects.length, more: page.truncated };
}

/**
 * The object files of a set, each looked at (lstat) once however many index entries share it, and judged for each
 * entry: its path, or what is wrong (outside the set, missing, not a regular file, another size than the entry's).
 */
class ObjectFiles {
  private readonly stats = new Map<string, Stats | undefined>();
  constructor(private readonly setDir: string) {}

  /** Synchronous on purpose, like the backup's stats: microseconds on the page cache, no thread-pool round trip. */
  judge(e: IndexEntry): { path: string } | { problem: string } {
    let path: string;
    try {
      path = artifactPath(this.setDir, e.file);
    } catch {
      return { problem: `file ${JSON.stringify(e.file)} is outside the set` };
    }
    if (!this.stats.has(path)) this.stats.set(path, lstatSync(path, { throwIfNoEntry: false }));
    const got = this.stats.get(path);
    if (!got) return { problem: `${e.file}: missing` };
    if (!got.isFile()) return { problem: `${e.file}: not a regular file` };
    if (got.size !== e.size) return { problem: `${e.file}: size ${got.size} bytes, index says ${e.size}` };
    return { path };
  }
}

/** Index entries of a set's bucket, streamed line by line (an index may hold millions of objects). */
async function* readIndex(file: string, where: string): AsyncGenerator<IndexEntry> {
  const rl = createInterface({ input: createReadStream(file, { encoding: 'utf8' }), crlfDelay: Infinity });
  let n = 0;
  for await (const line of rl) {
    n++;
    if (line) yield parseIndexLine(line, `${where} line ${n}`);
  }
}

/** Index lines written in listing order although downloads finish out of order; small buffered writes. */
class OrderedLines {
  private next = 0;
  private pending = new Map<number, string>();
  private buffer = '';
  private chain: Promise<unknown> = Promise.resolve();

  constructor(private readonly fh: FileHandle) {}

  put(seq: number, line: string | null): void {
    this.pending.set(seq, line ?? '');
    while (this.pending.has(this.next)) {
      const l = this.pending.get(this.next)!;
      this.pending.delete(this.next++);
      if (l) this.buffer += `${l}\n`;
    }
    if (this.buffer.length >= 64 * 1024) this.flush();
  }

  private flush(): void {
    const data = this.buffer;
    this.buffer = '';
    this.chain = this.chain.then(() => this.fh.write(data));
    this.chain.catch(() => {}); // reported by close(); never an unhandled rejection in between
  }

  async close(): Promise<void> {
    if (this.pending.size) throw new Error(`internal: ${this.pending.size} index lines never written`);
    this.flush();
    await this.chain;
    await this.fh.close();
  }
}

interface PreviousBucket {
  setDir: string;
  id: string;
  entries: Map<string, IndexEntry>;
  /** When that set was finished (ms): a file of it modified later was changed since, and is not linked again. */
  finishedAt: number;
}

interface S3RestoreData {
  scratch: boolean;
  targets: (TargetState & { dir: string; index: string })[];
}

export function createS3Source(cfg: S3Config, tuningIn: Partial<S3Tuning> = {}): Source {
  const tuning = { ...DEFAULT_TUNING, ...tuningIn };
  const concurrency = cfg.concurrency ?? 16;
  const endpoint = displayEndpoint(cfg.endpoint);
  const restoreInto = (cfg.restoreInto ?? {}) as Record<string, string>;

  const withStore = async <T>(ctx: SourceContext, fn: (s: Store) => Promise<T>): Promise<T> => {
    const s = openStore(cfg, ctx, concurrency);
    try {
      return await fn(s);
    } finally {
      s.close();
    }
  };

  const step = async <T>(what: string, fn: () => Promise<T>): Promise<T> => {
    try {
      return await fn();
    } catch (err) {
      if (err instanceof StepError || err instanceof VerifyError || err instanceof RefusedError || err instanceof UsageError) throw err;
      throw new StepError('s3', what, sdkMessage(err), { cause: err });
    }
  };

  /**
   * The buckets to back up. Configured names come with their first listing page requested: that page is also the
   * check that the bucket exists (no HeadBucket round trip first), and every name is answered before any object is
   * downloaded. With `all` the store's own list names them, and each bucket's listing starts when its turn comes.
   */
  async function resolveBuckets(s: Store, out: SourceContext['out']): Promise<{ bucket: string; firstPage?: Promise<ListPage> }[]> {
    if (cfg.buckets === undefined || cfg.buckets === 'all') {
      const { client, m } = await s.sdk();
      const r = await client.send(new m.ListBucketsCommand({}));
      const names = (r.Buckets ?? []).map((b) => b.Name!).filter(Boolean).sort();
      // A restore drill's scratch copy left by a killed verify-latest --deep is not the application's data.
      for (const name of names.filter(isScratchBucket)) out.warn(`s3: bucket ${name} is a restore drill's scratch copy left by a run that was killed: not backed up; delete it once no drill is running`);
      return names.filter((n) => !isScratchBucket(n)).map((bucket) => ({ bucket }));
    }
    const buckets = cfg.buckets.map((bucket) => ({ bucket, firstPage: requestPage(s, bucket) }));
    for (const { bucket, firstPage } of buckets) {
      await firstPage.catch((err: unknown) => {
        if (statusOf(err) === 404) throw new StepError('s3', 'list buckets', `bucket ${bucket} does not exist at ${endpoint}`);
        throw err;
      });
    }
    return buckets;
  }

  /** The previous set's index of a bucket, trusted only if its sha256 matches that set's manifest and it came from this store. */
  async function previousBucket(ctx: SourceContext, bucket: string): Promise<PreviousBucket | undefined> {
    const { previousSetDir: setDir, previousManifest: m } = ctx;
    const details = m?.sources.s3?.details as S3Details | undefined;
    if (!setDir || !m || details?.layout !== 1 || details.endpoint !== endpoint) return undefined;
    const b = details.buckets.find((x) => x.name === bucket);
    const artifact = b && m.artifacts.find((a) => a.path === b.index && a.source === 's3');
    if (!b || !artifact) return undefined;
    try {
      const file = artifactPath(setDir, b.index);
      if ((await sha256File(file)) !== artifact.sha256) {
        ctx.out.warn(`s3: the index of bucket ${bucket} in set ${m.id} does not match its manifest: downloading every object again`);
        return undefined;
      }
      const entries = new Map<string, IndexEntry>();
      for await (const e of readIndex(file, b.index)) entries.set(e.key, e);
      return { setDir, id: m.id, entries, finishedAt: Date.parse(m.finishedAt) };
    } catch (err) {
      ctx.out.warn(`s3: cannot use set ${m.id} for bucket ${bucket}: ${(err as Error).message}; downloading every object again`);
      return undefined;
    }
  }

  async function backupBucket(ctx: SourceContext, s: Store, stageDir: string, bucket: string, requested?: Promise<ListPage>) {
    const dir = bucketDirName(bucket);
    const bucketDir = join(stageDir, 's3', dir);
    const partial = join(stageDir, 's3', '.partial', dir);
    await mkdir(join(bucketDir, 'objects'), { recursive: true, mode: 0o700 });
    await mkdir(partial, { recursive: true, mode: 0o700 });
    // The first listing page is on its way while the previous set's index is checked and read.
    const firstPage = requested ?? requestPage(s, bucket);
    const prev = await previousBucket(ctx, bucket);
    // Directories, links and stats are synchronous on purpose: a few microseconds each on the page cache, where the
    // promise API would send each of 10,000 through libuv's thread pool. Object bytes are written asynchronously.
    const made = new Set<string>();
    const ensureDir = (d: string) => {
      if (made.has(d)) return;
      mkdirSync(d, { recursive: true, mode: 0o700 });
      made.add(d);
    };
    const stats = { objects: 0, bytes: 0, linked: 0, downloaded: 0, downloadedBytes: 0, vanished: 0 };
    const index = new OrderedLines(await open(join(stageDir, indexPath(dir)), 'wx', 0o600));
    let seq = 0;
    const listing = (async function* () {
      for await (const o of listObjects(s, bucket, firstPage)) yield { seq: seq++, o };
    })();

    /** Hard-link the previous set's file of an unchanged object (copy across file systems); false if unusable. */
    const reuse = (p: IndexEntry, rel: string): boolean => {
      let from: string;
      try {
        from = artifactPath(prev!.setDir, p.file);
      } catch {
        return false;
      }
      const st = lstatSync(from, { throwIfNoEntry: false });
      // Size, and not modified after its set was finished (a file replaced or rewritten since would carry the damage
      // into every new set): such an object is downloaded again. Hashing every linked file each night is what
      // verify-latest --checksums does instead.
      if (!st?.isFile() || st.size !== p.size || !(st.mtimeMs <= prev!.finishedAt)) return false;
      const to = join(stageDir, rel);
      ensureDir(dirname(to));
      try {
        linkSync(from, to);
      } catch (err) {
        const code = (err as NodeJS.ErrnoException).code;
        if (code === 'EEXIST') return true; // another key with the same content got there first
        if (code !== 'EXDEV' && code !== 'EPERM' && code !== 'EMLINK') throw err;
        copyFileSync(from, to);
      }
      return true;
    };

    /** One GET streamed into a file (or memory when small) while hashing; null if the key is gone. */
    const downloadOnce = async (seqNo: number, o: Listed): Promise<IndexEntry | null> => {
      let res: IncomingMessage;
      try {
        res = await s.getObject(bucket, o.key);
      } catch (err) {
        // Deleted between the listing and now: the set describes the bucket without it.
        if ((err as Error).name === 'NoSuchKey') return null;
        throw err;
      }
      const h = res.headers;
      const header = (name: string): string | undefined => {
        const v = h[name];
        return typeof v === 'string' ? v : undefined;
      };
      const announced = h['content-length'] !== undefined ? Number(h['content-length']) : undefined;
      const hash = createHash('sha256');
      let size = 0;
      let small: Buffer[] | undefined = announced !== undefined && announced <= IN_MEMORY ? [] : undefined;
      const tmp = join(partial, String(seqNo));
      let fh: FileHandle | undefined;
      let done = false;
      try {
        for await (const chunk of res) {
          const b = chunk as Buffer;
          hash.update(b);
          size += b.length;
          if (small && size <= IN_MEMORY) small.push(b);
          else {
            if (!fh) {
              fh = await open(tmp, 'wx', 0o600);
              for (const held of small ?? []) await fh.write(held);
              small = undefined;
            }
            await fh.write(b);
          }
        }
        if (announced !== undefined && announced !== size) {
          // A connection cut short: worth another attempt.
          throw Object.assign(new Error(`${showKey(o.key)}: received ${size} bytes, the store announced ${announced}`), { retryable: true });
        }
        done = true;
      } finally {
        await fh?.close();
        if (!done && fh) await rm(tmp, { force: true }); // a retry starts from an empty file
      }
      const sha256 = hash.digest('hex');
      const rel = objectPath(dir, sha256);
      const final = join(stageDir, rel);
      ensureDir(dirname(final));
      if (fh) {
        if (existsSync(final)) unlinkSync(tmp);
        else renameSync(tmp, final);
      } else {
        try {
          await writeFile(final, small!.length === 1 ? small![0]! : Buffer.concat(small!, size), { flag: 'wx', mode: 0o600 });
        } catch (err) {
          // Same content under another key, written by another worker: the file is already right.
          if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
        }
      }
      const etag = header('etag') ?? o.etag;
      const lastModified = header('last-modified');
      // User metadata as the SDK reads it: every x-amz-meta-* header, the name after the prefix (Node lower-cases names).
      const metadata: Record<string, string> = {};
      for (const [k, v] of Object.entries(h)) if (k.startsWith('x-amz-meta-') && typeof v === 'string') setEntry(metadata, k.slice(11), v);
      const contentType = header('content-type');
      const cacheControl = header('cache-control');
      const contentDisposition = header('content-disposition');
      const contentEncoding = header('content-encoding');
      const contentLanguage = header('content-language');
      stats.downloaded++;
      stats.downloadedBytes += size;
      return {
        key: o.key,
        size,
        etag,
        // The listing's time when GetObject returned the version we listed (its header has only seconds).
        lastModified: etag === o.etag ? o.lastModified : lastModified ? new Date(lastModified).toISOString() : '',
        sha256,
        ...(contentType !== undefined && { contentType }),
        metadata,
        ...(cacheControl !== undefined && { cacheControl }),
        ...(contentDisposition !== undefined && { contentDisposition }),
        ...(contentEncoding !== undefined && { contentEncoding }),
        ...(contentLanguage !== undefined && { contentLanguage }),
        file: rel,
      };
    };

    /** downloadOnce with a bounded retry on dropped connections, cut-short bodies and 5xx answers. */
    const download = (seqNo: number, o: Listed): Promise<IndexEntry | null> => withRetries(ctx.signal, () => downloadOnce(seqNo, o));

    let listed = false;
    try {
      await forEachBounded(listing, concurrency, async ({ seq: n, o }) => {
        const p = prev?.entries.get(o.key);
        let entry: IndexEntry | null;
        if (p && unchanged(p, o) && reuse(p, objectPath(dir, p.sha256))) {
          entry = { ...p, file: objectPath(dir, p.sha256) };
          stats.linked++;
        } else {
          entry = await download(n, o).catch((err: unknown) => {
            throw new StepError('s3', `bucket ${bucket} object ${showKey(o.key)}`, err instanceof Error && !('$metadata' in err) ? err.message : sdkMessage(err), { cause: err });
          });
        }
        if (entry) {
          stats.objects++;
          stats.bytes += entry.size;
        } else stats.vanished++;
        index.put(n, entry && JSON.stringify(entry));
      });
      listed = true;
    } finally {
      if (!listed) await index.close().catch(() => {}); // the first error is the one to report
      await rm(partial, { recursive: true, force: true });
    }
    await index.close();
    if (stats.vanished) ctx.out.warn(`s3: ${stats.vanished} objects of bucket ${bucket} were deleted while the backup ran: not in the set`);
    return { dir, stats, prevId: prev?.id };
  }

  /** Every object file of a bucket against its index entry; problems are pushed, not thrown. */
  async function checkBucket(setDir: string, b: S3Details['buckets'][number], artifact: Artifact, counted: { objects?: number; bytes?: number } | undefined, where: string, problems: string[]): Promise<void> {
    const file = artifactPath(setDir, b.index);
    if ((await sha256File(file).catch(() => '')) !== artifact.sha256) {
      problems.push(`${where}: index ${b.index} does not match its sha256 in the manifest`);
      return;
    }
    // Objects with the same content share one file: it is read and hashed once, and every entry is judged by it.
    const files = new ObjectFiles(setDir);
    const hashes = new Map<string, Promise<string>>();
    let objects = 0;
    let bytes = 0;
    const check = async (e: IndexEntry): Promise<string | null> => {
      const found = files.judge(e);
      if ('problem' in found) return found.problem;
      let h = hashes.get(found.path);
      if (!h) hashes.set(found.path, (h = sha256File(found.path)));
      const sum = await h;
      return sum === e.sha256 ? null : `${e.file}: sha256 ${sum} does not match the index's ${e.sha256}`;
    };
    try {
      await forEachBounded(readIndex(file, b.index), 4, async (e) => {
        objects++;
        bytes += e.size;
        const problem = await check(e);
        if (problem) problems.push(`${where} key ${showKey(e.key)}: ${problem}`);
      });
    } catch (err) {
      problems.push(`${where}: ${(err as Error).message}`);
      return;
    }
    if (counted && (counted.objects !== objects || counted.bytes !== bytes)) {
      problems.push(`${where}: index holds ${objects} objects (${bytes} bytes), the manifest counts ${counted.objects} (${counted.bytes} bytes)`);
    }
  }

  return {
    name: 's3',
    describe: () => `s3 at ${endpoint}: ${cfg.buckets === undefined || cfg.buckets === 'all' ? 'all buckets' : cfg.buckets.join(', ')}`,

    async backup(ctx, stageDir): Promise<BackupResult> {
      const { out } = ctx;
      return withStore(ctx, async (s) => {
        const buckets = await step('list buckets', () => resolveBuckets(s, ctx.out));
        if (ctx.runner.dryRun) {
          out.plan(`s3: download every object of ${buckets.map((b) => b.bucket).join(', ') || '(no buckets)'} from ${endpoint} into ${join(stageDir, 's3')}, hard-linking objects unchanged since the previous set`);
          return { record: { serverVersion: 'unknown', counts: {} }, artifacts: [] };
        }
        await mkdir(join(stageDir, 's3'), { recursive: true, mode: 0o700 });
        const counts: Counts = {};
        const artifacts: Artifact[] = [];
        const details: S3Details = { layout: 1, endpoint, buckets: [] };
        for (const { bucket, firstPage } of buckets) {
          const r = await out.step(
            `s3: bucket ${bucket}`,
            () => step(`bucket ${bucket}`, () => backupBucket(ctx, s, stageDir, bucket, firstPage)),
            ({ stats, prevId }) => ({
              bytes: stats.bytes,
              note: prevId
                ? `${stats.objects} objects: ${stats.downloaded} downloaded (${formatBytes(stats.downloadedBytes)}), ${stats.linked} unchanged hard-linked from ${prevId}`
                : `${stats.objects} objects`,
            }),
          );
          const index = indexPath(r.dir);
          artifacts.push(await describeArtifact(stageDir, index, 's3', { kind: 's3-index', compression: 'none' }));
          counts[bucket] = { objects: r.stats.objects, bytes: r.stats.bytes };
          details.buckets.push({ name: bucket, dir: r.dir, index, objects: r.stats.objects, bytes: r.stats.bytes, linked: r.stats.linked, downloaded: r.stats.downloaded });
        }
        await rm(join(stageDir, 's3', '.partial'), { recursive: true, force: true });
        // The set is published only with every byte on disk: one syncfs(2) for the whole file system instead of an
        // fsync per object (10,000 fsyncs queue behind each other in the thread pool). Links need no data sync.
        if (details.buckets.some((b) => b.downloaded > 0)) {
          await out.step('s3: sync objects to disk', () => step('sync objects to disk', () => ctx.runner.capture({ argv: ['sync', '--file-system', join(stageDir, 's3')] })));
        }
        return { record: { serverVersion: s.server() ?? 'unknown', counts, details: details as unknown as Record<string, unknown> }, artifacts };
      });
    },

    async verifyArtifacts(ctx, setDir, manifest) {
      const details = s3Details(manifest);
      const problems: string[] = [];
      for (const b of details.buckets) {
        const artifact = manifest.artifacts.find((a) => a.path === b.index && a.source === 's3');
        const where = `s3: bucket ${b.name}`;
        if (!artifact) {
          problems.push(`${where}: index ${b.index} is not listed in the manifest`);
          continue;
        }
        const before = problems.length;
        // The step reports what it found: not "ok" with problems behind it.
        await ctx.out.step(
          `s3: every object of bucket ${b.name} against its index`,
          () => checkBucket(setDir, b, artifact, manifest.sources.s3!.counts[b.name], where, problems),
          () => {
            const n = problems.length - before;
            return { failed: n ? `${n} problem${n > 1 ? 's' : ''}` : undefined };
          },
        );
      }
      if (problems.length) {
        const shown = problems.slice(0, PROBLEMS_SHOWN);
        if (problems.length > shown.length) shown.push(`... and ${problems.length - shown.length} more`);
        // Callers may keep only the message (verify-latest --checksums): it names the first problems itself.
        const head = problems.slice(0, 3).join('; ');
        throw new VerifyError(problems.length <= 3 ? head : `s3: ${problems.length} problems in the backed-up objects, first: ${head}`, shown);
      }
    },

    async checkPresence(setDir, manifest) {
      const problems: string[] = [];
      for (const b of s3Details(manifest).buckets) {
        let index: string;
        try {
          index = artifactPath(setDir, b.index);
        } catch (err) {
          problems.push(`s3: bucket ${b.name}: ${(err as Error).message}`);
          continue;
        }
        // Every entry against its own size (a file two keys share is looked at once).
        const files = new ObjectFiles(setDir);
        try {
          for await (const e of readIndex(index, b.index)) {
            const found = files.judge(e);
            if ('problem' in found) problems.push(`s3: bucket ${b.name} key ${showKey(e.key)}: ${found.problem}`);
          }
        } catch (err) {
          problems.push(`s3: bucket ${b.name}: ${(err as Error).message}`);
        }
      }
      return problems;
    },

    async planRestore(ctx, setDir, manifest, opts): Promise<RestorePlan> {
      const details = s3Details(manifest);
      const counts = manifest.sources.s3!.counts;
      return withStore(ctx, (s) =>
        step('plan restore', async () => {
          const targets: S3RestoreData['targets'] = [];
          const steps: string[] = [];
          const refusals: string[] = [];
          for (const [i, b] of details.buckets.entries()) {
            const target = opts.scratch ? scratchBucketName(opts.scratch, i) : (ownEntry(restoreInto, b.name) ?? b.name);
            if (!isValidBucketName(target) && !(target === b.name && !opts.scratch)) {
              throw new UsageError(`invalid config: sources.s3.restoreInto: ${JSON.stringify(target)} is not a valid bucket name`);
            }
            const exists = await s.headBucket(target);
            const first = exists ? await fullness(s, target) : { count: 0, more: false };
            const extras: string[] = [];
            if (first.count > 0 && opts.force && !opts.scratch) {
              const keep = new Set<string>();
              for await (const e of readIndex(artifactPath(setDir, b.index), b.index)) keep.add(e.key);
              for await (const o of listObjects(s, target)) if (!keep.has(o.key)) extras.push(o.key);
            }
            const t: S3RestoreData['targets'][number] = {
              bucket: b.name,
              target,
              exists,
              present: first.count,
              presentMore: first.more,
              extras,
              objects: counts[b.name]?.objects ?? b.objects,
              bytes: counts[b.name]?.bytes ?? b.bytes,
              dir: b.dir,
              index: b.index,
            };
            const r = bucketRestoreStep(t, { force: opts.force, scratch: Boolean(opts.scratch) });
            if (r.refusal) refusals.push(r.refusal);
            else steps.push(r.step);
            targets.push(t);
          }
          const twice = targets.filter((t, i) => targets.findIndex((u) => u.target === t.target) !== i).map((t) => t.target);
          if (twice.length) throw new UsageError(`invalid config: sources.s3.restoreInto: more than one bucket would be restored into ${[...new Set(twice)].join(', ')}`);
          if (refusals.length) throw new RefusedError('s3: refusing to overwrite data', refusals);
          steps.push('compare objects and bytes of every bucket with the manifest');
          return { source: 's3', steps, data: { scratch: Boolean(opts.scratch), targets } satisfies S3RestoreData };
        }),
      );
    },

    async restore(ctx, setDir, _manifest, plan, opts) {
      const data = plan.data as S3RestoreData;
      await withStore(ctx, async (s) => {
        for (const t of data.targets) {
          await ctx.out.step(
            `s3: restore bucket ${t.bucket} into ${t.target}`,
            () =>
              step(`restore bucket ${t.bucket}`, async () => {
                if (!t.exists) await createBucket(s, t.target);
                const sdk = await s.sdk();
                const keep = opts.force && t.present > 0 && !data.scratch ? new Set<string>() : undefined;
                await forEachBounded(readIndex(artifactPath(setDir, t.index), t.index), concurrency, async (e) => {
                  keep?.add(e.key);
                  // Interrupted: no new upload starts (the SDK would open new connections after the client is destroyed).
                  ctx.signal.throwIfAborted();
                  await upload(s, t.target, setDir, e, ctx.signal).catch((err: unknown) => {
                    if (ctx.signal.aborted) throw ctx.signal.reason;
                    throw new StepError('s3', `restore bucket ${t.bucket} object ${showKey(e.key)}`, sdkMessage(err), { cause: err });
                  });
                });
                // --force: the bucket ends up exactly as the backup; listed again, since objects may have arrived after the plan.
                let deleted = 0;
                if (keep) {
                  const extras: string[] = [];
                  for await (const o of listObjects(s, t.target)) if (!keep.has(o.key)) extras.push(o.key);
                  const unplanned = extras.filter((k) => !t.extras.includes(k)).length;
                  if (unplanned) ctx.out.warn(`s3: ${unplanned} objects appeared in ${t.target} after the plan and are not in the backup: deleting them too (--force)`);
                  await forEachBounded(extras, concurrency, async (key) => {
                    ctx.signal.throwIfAborted();
                    await sdk.client.send(new sdk.m.DeleteObjectCommand({ Bucket: t.target, Key: key }));
                    deleted++;
                  });
                }
                return deleted;
              }),
            (deleted) => ({ bytes: t.bytes, note: `${t.objects} objects${deleted ? `, ${deleted} not in the backup deleted` : ''}` }),
          );
        }
      });
    },

    async countRestored(ctx, plan) {
      const data = plan.data as S3RestoreData;
      return withStore(ctx, (s) =>
        step('count restored objects', async () => {
          const counts: Counts = {};
          for (const t of data.targets) counts[t.bucket] = await countBucket(s, t.target);
          return counts;
        }),
      );
    },

    async cleanup(ctx, plan) {
      const data = plan.data as S3RestoreData;
      if (!data.scratch) return;
      // Scratch buckets go after Ctrl-C too: this store is not stopped by the interrupt.
      await withStore({ ...ctx, signal: new AbortController().signal }, (s) =>
        step('remove scratch buckets', async () => {
          const sdk = await s.sdk();
          for (const t of data.targets) {
            if (!(await s.headBucket(t.target))) continue;
            await forEachBounded(listObjects(s, t.target), concurrency, async (o) => {
              await sdk.client.send(new sdk.m.DeleteObjectCommand({ Bucket: t.target, Key: o.key }));
            });
            await sdk.client.send(new sdk.m.DeleteBucketCommand({ Bucket: t.target }));
          }
        }),
      );
    },
  };

  async function createBucket(s: Store, bucket: string): Promise<void> {
    const sdk = await s.sdk();
    try {
      await sdk.client.send(new sdk.m.CreateBucketCommand({ Bucket: bucket }));
    } catch (err) {
      if ((err as Error).name !== 'BucketAlreadyOwnedByYou') throw err;
    }
  }

  /** One object back, byte-exact, with its headers and user metadata; a fresh file stream per attempt. */
  async function upload(s: Store, bucket: string, setDir: string, e: IndexEntry, signal: AbortSignal): Promise<void> {
    const file = artifactPath(setDir, e.file);
    const sdk = await s.sdk();
    const headers = {
      Bucket: bucket,
      Key: e.key,
      ContentType: e.contentType,
      Metadata: e.metadata,
      CacheControl: e.cacheControl,
      ContentDisposition: e.contentDisposition,
      ContentEncoding: e.contentEncoding,
      ContentLanguage: e.contentLanguage,
    };
    if (e.size <= tuning.multipartAbove) {
      const Body = e.size === 0 ? Buffer.alloc(0) : createReadStream(file);
      await sdk.client.send(new sdk.m.PutObjectCommand({ ...headers, Body, ContentLength: e.size }));
      return;
    }
    const { UploadId } = await sdk.client.send(new sdk.m.CreateMultipartUploadCommand(headers));
    try {
      const parts: { PartNumber: number; ETag: string }[] = [];
      for (const p of planParts(e.size, tuning.partSize)) {
        signal.throwIfAborted();
        const Body = createReadStream(file, { start: p.start, end: p.end });
        const r = await sdk.client.send(new sdk.m.UploadPartCommand({ Bucket: bucket, Key: e.key, UploadId, PartNumber: p.partNumber, Body, ContentLength: p.end - p.start + 1 }));
        parts.push({ PartNumber: p.partNumber, ETag: r.ETag! });
      }
      await sdk.client.send(new sdk.m.CompleteMultipartUploadCommand({ Bucket: bucket, Key: e.key, UploadId, MultipartUpload: { Parts: parts } }));
    } catch (err) {
      await sdk.client.send(new sdk.m.AbortMultipartUploadCommand({ Bucket: bucket, Key: e.key, UploadId })).catch(() => {});
      throw err;
    }
  }
}

function s3Details(manifest: Manifest): S3Details {
  const d = manifest.sources.s3?.details as S3Details | undefined;
  if (!d || d.layout !== 1 || !Array.isArray(d.buckets)) throw new VerifyError(`set ${manifest.id}: s3 details missing or of an unknown layout`);
  return d;
}
