// FAKE Qdrant REST server for tests (no Qdrant can run here, DESIGN.md §10). Request and response bodies are typed
// from @qdrant/js-client-rest's generated OpenAPI types. It honours `wait`, `priority` and `checksum` like Qdrant:
// a wrong checksum is a 400; an upload into a new collection without priority=snapshot comes back empty (DESIGN.md §6).
// A "snapshot" here is a JSON blob of the collection (config + points), not Qdrant's tar archive.
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import { createHash, randomBytes } from 'node:crypto';
import type { components, operations } from '../../node_modules/@qdrant/js-client-rest/dist/types/openapi/generated_schema.d.ts';

type S = components['schemas'];
/** The JSON body of an operation's response with the given status, as the generated client types it. */
type Body<Op extends keyof operations, Code extends 200 | 202> = operations[Op]['responses'] extends Record<Code, { content: { 'application/json': infer B } }> ? B : never;
type Req<Op extends keyof operations> = operations[Op] extends { requestBody?: { content: { 'application/json': infer B } } } ? B : never;

interface FakeCollection {
  vectors: S['VectorsConfig'] | undefined;
  /** Point id (JSON of the ExtendedPointId) -> point. */
  points: Map<string, S['PointStruct']>;
}

interface FakeSnapshot {
  blob: Buffer;
  description: S['SnapshotDescription'];
}

/** What a snapshot blob holds: enough to rebuild the collection. */
interface SnapshotContent {
  fake: 'qdrant-fake snapshot';
  vectors: S['VectorsConfig'] | undefined;
  points: S['PointStruct'][];
}

export interface QdrantFakeRequest {
  method: string;
  path: string;
  query: Record<string, string>;
  /** The api-key header was present and correct (or no key is configured). */
  authorized: boolean;
}

export interface QdrantFakeOptions {
  /** What GET / reports (default 1.16.2). */
  version?: string;
  /** When set, every request except /healthz, /livez, /readyz needs header `api-key: <apiKey>`. */
  apiKey?: string;
}

export interface QdrantFake {
  url: string;
  version: string;
  /** Every request received, in order. */
  readonly requests: QdrantFakeRequest[];
  /** Fault injection: snapshot downloads of these collections ('*' = all) get one byte flipped. */
  corruptDownloads: Set<string>;
  /** Fault injection: snapshot creation for these collections ('*' = all) never answers (a timeout test). */
  stallSnapshots: Set<string>;
  /** Fault injection: snapshot creation for these collections ('*' = all) completes, but the answer is a 504 (a proxy gave up). */
  loseSnapshotAnswers: Set<string>;
  /** Fault injection: snapshot downloads of these collections ('*' = all) send the first half (64 KiB at most), then stall. */
  stallDownloads: Set<string>;
  /** Direct state access for seeding and assertions (tests may also use the HTTP API). */
  collections: Map<string, FakeCollection>;
  aliases: Map<string, string>;
  snapshots: Map<string, Map<string, FakeSnapshot>>;
  close(): Promise<void>;
}

class HttpError extends Error {
  constructor(
    readonly status: number,
    message: string,
  ) {
    super(message);
  }
}

const UNAUTHENTICATED = new Set(['/healthz', '/livez', '/readyz']);

export async function startQdrantFake(opts: QdrantFakeOptions = {}): Promise<QdrantFake> {
  const version = opts.version ?? '1.16.2';
  const collections = new Map<string, FakeCollection>();
  const aliases = new Map<string, string>();
  const snapshots = new Map<string, Map<string, FakeSnapshot>>();
  const requests: QdrantFakeRequest[] = [];
  const corruptDownloads = new Set<string>();
  const stallSnapshots = new Set<string>();
  const loseSnapshotAnswers = new Set<string>();
  const stallDownloads = new Set<string>();
  const started = performance.now();

  const elapsed = () => (performance.now() - started) / 1000;
  const ok = <T>(res: ServerResponse, body: T, status = 200) => json(res, status, body);
  const need = (name: string): FakeCollection => {
    const c = collections.get(name);
    if (!c) throw new HttpError(404, `Not found: Collection \`${name}\` doesn't exist!`);
    return c;
  };

  function snapshotBlob(c: FakeCollection): Buffer {
    const content: SnapshotContent = { fake: 'qdrant-fake snapshot', vectors: c.vectors, points: [...c.points.values()] };
    return Buffer.from(JSON.stringify(content));
  }

  function createSnapshot(name: string): S['SnapshotDescription'] {
    const blob = snapshotBlob(need(name));
    const now = new Date();
    const snapName = `${name}-${randomBytes(6).readUIntBE(0, 6)}-${now.toISOString().slice(0, 19).replace(/[T:]/g, '-')}.snapshot`;
    const description: S['SnapshotDescription'] = {
      name: snapName,
      creation_time: now.toISOString().slice(0, 19),
      size: blob.length,
      checksum: createHash('sha256').update(blob).digest('hex'),
    };
    if (!snapshots.has(name)) snapshots.set(name, new Map());
    snapshots.get(name)!.set(snapName, { blob, description });
    return description;
  }

  function recover(name: string, blob: Buffer, priority: string | undefined): void {
    let content: SnapshotContent;
    try {
      content = JSON.parse(blob.toString('utf8')) as SnapshotContent;
      if (content.fake !== 'qdrant-fake snapshot') throw new Error('not a snapshot');
    } catch {
      throw new HttpError(500, 'Service internal error: failed to unpack snapshot: not a valid snapshot archive');
    }
    const existed = collections.has(name);
    const points = new Map(content.points.map((p) => [JSON.stringify(p.id), p]));
    // The documented trap: without priority=snapshot the (empty) local replica wins for a collection that is
    // created by the recovery, so it comes back without points.
    collections.set(name, { vectors: content.vectors, points: !existed && priority !== 'snapshot' ? new Map() : points });
  }

  async function route(req: IncomingMessage, res: ServerResponse, url: URL, body: Buffer): Promise<void> {
    const seg = url.pathname.split('/').slice(1).map(decodeURIComponent);
    const q = (k: string) => url.searchParams.get(k) ?? undefined;
    const wait = q('wait') !== 'false';
    const m = req.method;
    const jsonBody = <T>(): T => {
      try {
        return JSON.parse(body.toString('utf8') || '{}') as T;
      } catch {
        throw new HttpError(400, 'Format error in JSON body');
      }
    };

    if (m === 'GET' && url.pathname === '/') return ok<Body<'root', 200>>(res, { title: 'qdrant - vector search engine', version, commit: 'fake' });
    if (m === 'GET' && UNAUTHENTICATED.has(url.pathname)) return text(res, 200, 'healthz check passed');
    if (m === 'GET' && url.pathname === '/aliases') {
      return ok<Body<'get_collections_aliases', 200>>(res, { status: 'ok', time: elapsed(), result: { aliases: [...aliases].map(([alias_name, collection_name]) => ({ alias_name, collection_name })) } });
    }
    if (seg[0] !== 'collections') throw new HttpError(404, 'Not found');
    if (seg.length === 1 && m === 'GET') {
      return ok<Body<'get_collections', 200>>(res, { status: 'ok', time: elapsed(), result: { collections: [...collections.keys()].map((name) => ({ name })) } });
    }
    if (seg.length === 2 && seg[1] === 'aliases' && m === 'POST') {
      const { actions } = jsonBody<Req<'update_aliases'>>();
      // All or nothing, like Qdrant: work on a copy, commit at the end.
      const next = new Map(aliases);
      for (const a of actions) {
        if ('create_alias' in a) {
          need(a.create_alias.collection_name);
          if (next.has(a.create_alias.alias_name)) throw new HttpError(400, `Bad request: Alias ${a.create_alias.alias_name} already exists!`);
          next.set(a.create_alias.alias_name, a.create_alias.collection_name);
        } else if ('delete_alias' in a) {
          if (!next.delete(a.delete_alias.alias_name)) throw new HttpError(404, `Not found: Alias ${a.delete_alias.alias_name} doesn't exist!`);
        } else {
          throw new HttpError(400, 'qdrant fake: rename_alias is not implemented');
        }
      }
      aliases.clear();
      for (const [k, v] of next) aliases.set(k, v);
      return ok<Body<'update_aliases', 200>>(res, { status: 'ok', time: elapsed(), result: true });
    }
    const name = seg[1]!;
    if (seg.length === 2) {
      if (m === 'GET') {
        const c = need(name);
        const info: S['CollectionInfo'] = {
          status: 'green',
          optimizer_status: 'ok',
          points_count: c.points.size,
          indexed_vectors_count: 0,
          segments_count: 1,
          config: {
            params: { vectors: c.vectors, shard_number: 1, replication_factor: 1, write_consistency_factor: 1, on_disk_payload: true },
            hnsw_config: { m: 16, ef_construct: 100, full_scan_threshold: 10000 },
            optimizer_config: { deleted_threshold: 0.2, vacuum_min_vector_number: 1000, default_segment_number: 0, flush_interval_sec: 5 },
          },
          payload_schema: {},
        };
        return ok<Body<'get_collection', 200>>(res, { status: 'ok', time: elapsed(), result: info });
      }
      if (m === 'PUT') {
        if (collections.has(name)) throw new HttpError(409, `Wrong input: Collection \`${name}\` already exists!`);
        const spec = jsonBody<Req<'create_collection'>>();
        collections.set(name, { vectors: spec.vectors, points: new Map() });
        return ok<Body<'create_collection', 200>>(res, { status: 'ok', time: elapsed(), result: true });
      }
      if (m === 'DELETE') {
        const existed = collections.delete(name);
        for (const [a, c] of aliases) if (c === name) aliases.delete(a);
        return ok<Body<'delete_collection', 200>>(res, { status: 'ok', time: elapsed(), result: existed });
      }
    }
    if (seg[2] === 'points' && seg.length === 3 && m === 'PUT') {
      const c = need(name);
      const op = jsonBody<Req<'upsert_points'>>();
      if (!('points' in op)) throw new HttpError(400, 'qdrant fake: only the PointsList form of upsert is implemented');
      for (const p of op.points) c.points.set(JSON.stringify(p.id), p);
      return ok<Body<'upsert_points', 200>>(res, { status: 'ok', time: elapsed(), result: { operation_id: 0, status: wait ? 'completed' : 'acknowledged' } });
    }
    if (seg[2] === 'points' && seg[3] === 'count' && m === 'POST') {
      const c = need(name);
      const r = jsonBody<Req<'count_points'>>();
      if (r.filter) throw new HttpError(400, 'qdrant fake: count with a filter is not implemented');
      return ok<Body<'count_points', 200>>(res, { status: 'ok', time: elapsed(), result: { count: c.points.size } });
    }
    if (seg[2] === 'snapshots') {
      if (seg.length === 3 && m === 'GET') {
        need(name);
        return ok<Body<'list_snapshots', 200>>(res, { status: 'ok', time: elapsed(), result: [...(snapshots.get(name)?.values() ?? [])].map((s) => s.description) });
      }
      if (seg.length === 3 && m === 'POST') {
        need(name);
        if (stallSnapshots.has(name) || stallSnapshots.has('*')) return; // no answer; close() drops the connection
        if (loseSnapshotAnswers.has(name) || loseSnapshotAnswers.has('*')) {
          createSnapshot(name);
          res.writeHead(504, { 'content-type': 'text/html' }).end('<html><body><h1>504 Gateway Time-out</h1></body></html>');
          return;
        }
        if (!wait) {
          // Like Qdrant: 202 at once, the snapshot appears later and the answer carries no description.
          setTimeout(() => collections.has(name) && createSnapshot(name), 100);
          return ok<Body<'create_snapshot', 202>>(res, { status: 'accepted', time: elapsed() }, 202);
        }
        return ok<Body<'create_snapshot', 200>>(res, { status: 'ok', time: elapsed(), result: createSnapshot(name) });
      }
      if (seg.length === 4 && seg[3] === 'upload' && m === 'POST') {
        const blob = multipartFile(req.headers['content-type'], body, 'snapshot');
        const checksum = q('checksum');
        if (checksum !== undefined) {
          const actual = createHash('sha256').update(blob).digest('hex');
          if (actual !== checksum) throw new HttpError(400, `Bad request: Snapshot checksum mismatch: expected ${checksum}, got ${actual}`);
        }
        const priority = q('priority');
        if (!wait) {
          setTimeout(() => recover(name, blob, priority), 100);
          return ok<Body<'recover_from_uploaded_snapshot', 202>>(res, { status: 'accepted', time: elapsed() }, 202);
        }
        recover(name, blob, priority);
        return ok<Body<'recover_from_uploaded_snapshot', 200>>(res, { status: 'ok', time: elapsed(), result: true });
      }
      if (seg.length === 4) {
        const snap = snapshots.get(name)?.get(seg[3]!);
        if (!snap) throw new HttpError(404, `Not found: Snapshot ${seg[3]} not found`);
        if (m === 'GET') {
          let blob = snap.blob;
          if (corruptDownloads.has(name) || corruptDownloads.has('*')) {
            blob = Buffer.from(blob);
            const i = blob.length >> 1;
            blob[i] = blob[i]! ^ 0x01;
          }
          res.writeHead(200, { 'content-type': 'application/octet-stream', 'content-length': blob.length });
          if (stallDownloads.has(name) || stallDownloads.has('*')) {
            res.write(blob.subarray(0, Math.min(64 * 1024, blob.length >> 1)));
            return; // the rest never comes; close() drops the connection
          }
          // In small pieces, so a client that buffers instead of streaming is no faster here.
          for (let i = 0; i < blob.length; i += 64 * 1024) res.write(blob.subarray(i, i + 64 * 1024));
          res.end();
          return;
        }
        if (m === 'DELETE') {
          snapshots.get(name)!.delete(seg[3]!);
          return ok<Body<'delete_snapshot', 200>>(res, { status: 'ok', time: elapsed(), result: true });
        }
      }
    }
    throw new HttpError(404, `qdrant fake: no route for ${m} ${url.pathname}`);
  }

  const server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const url = new URL(req.url ?? '/', 'http://fake');
      const authorized = !opts.apiKey || UNAUTHENTICATED.has(url.pathname) || req.headers['api-key'] === opts.apiKey;
      requests.push({ method: req.method ?? '', path: url.pathname, query: Object.fromEntries(url.searchParams), authorized });
      if (!authorized) return text(res, 401, 'Unauthorized: Invalid API key or JWT');
      route(req, res, url, Buffer.concat(chunks)).catch((err: unknown) => {
        const status = err instanceof HttpError ? err.status : 500;
        const error: S['ErrorResponse'] = { status: { error: err instanceof Error ? err.message : String(err) }, time: elapsed(), result: null };
        if (!res.headersSent) json(res, status, error);
        else res.destroy();
      });
    });
  });
  const port = await new Promise<number>((resolve) => server.listen(0, '127.0.0.1', () => resolve((server.address() as { port: number }).port)));
  return {
    url: `http://127.0.0.1:${port}`,
    version,
    requests,
    corruptDownloads,
    stallSnapshots,
    loseSnapshotAnswers,
    stallDownloads,
    collections,
    aliases,
    snapshots,
    close: () => new Promise<void>((resolve) => (server.closeAllConnections(), server.close(() => resolve()))),
  };
}

function json(res: ServerResponse, status: number, body: unknown): void {
  const data = JSON.stringify(body);
  res.writeHead(status, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(data) });
  res.end(data);
}

function text(res: ServerResponse, status: number, body: string): void {
  res.writeHead(status, { 'content-type': 'text/plain; charset=utf-8' });
  res.end(body);
}

/** The bytes of one file field of a multipart/form-data body (enough of RFC 7578 for fetch's FormData). */
export function multipartFile(contentType: string | undefined, body: Buffer, field: string): Buffer {
  const boundary = /boundary=(?:"([^"]+)"|([^;]+))/i.exec(contentType ?? '');
  if (!boundary || !/^multipart\/form-data/i.test(contentType ?? '')) throw new HttpError(400, 'Bad request: expected multipart/form-data');
  const delim = Buffer.from(`--${boundary[1] ?? boundary[2]}`);
  let pos = body.indexOf(delim);
  while (pos >= 0) {
    const headStart = pos + delim.length + 2;
    const headEnd = body.indexOf('\r\n\r\n', headStart);
    if (headEnd < 0) break;
    const next = body.indexOf(delim, headEnd);
    if (next < 0) break;
    const head = body.subarray(headStart, headEnd).toString('utf8');
    if (new RegExp(`name="${field}"`).test(head)) return body.subarray(headEnd + 4, next - 2);
    pos = next;
  }
  throw new HttpError(400, `Bad request: multipart field "${field}" missing`);
}
