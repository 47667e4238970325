// Pure parts of the S3 source: where things live in a set, the per-bucket index format, names and restore decisions.
// An object key is not a path (DESIGN.md §6): keys live only inside index files; object files are named by content.
import { createHash } from 'node:crypto';

/** One line of s3/<bucket-dir>/index.jsonl: everything needed to put the object back byte-exact. */
export interface IndexEntry {
  key: string;
  size: number;
  /** As the store reported it (quoted); multipart ETags are not an MD5, so sha256 is ours. */
  etag: string;
  /** ISO time from the listing: compared with the next run's listing to find unchanged objects. */
  lastModified: string;
  sha256: string;
  contentType?: string;
  metadata: Record<string, string>;
  cacheControl?: string;
  contentDisposition?: string;
  contentEncoding?: string;
  contentLanguage?: string;
  /** The object's file, relative to the set directory. */
  file: string;
}

/** What the manifest's `details` holds for the s3 source. */
export interface S3Details {
  layout: 1;
  /** The store the set came from (no credentials): hard links are only reused from the same store. */
  endpoint: string;
  buckets: { name: string; dir: string; index: string; objects: number; bytes: number; linked: number; downloaded: number }[];
}

export interface Listed {
  key: string;
  size: number;
  etag: string;
  lastModified: string;
}

/** Directory name for a bucket: readable, but never a path component that means something ("..", "/"). */
export function bucketDirName(bucket: string): string {
  const enc = encodeURIComponent(bucket).replace(/\./g, '%2E').replace(/\*/g, '%2A');
  // Some stores allow long names; file names stop at 255 bytes.
  return enc.length <= 120 ? enc : `bucket-${createHash('sha256').update(bucket).digest('hex').slice(0, 40)}`;
}

export const indexPath = (dir: string): string => `s3/${dir}/index.jsonl`;
export const objectPath = (dir: string, sha256: string): string => `s3/${dir}/objects/${sha256.slice(0, 2)}/${sha256}`;

/** The endpoint as recorded: origin and path only, never user:password@. */
export function displayEndpoint(endpoint: string): string {
  const u = new URL(endpoint);
  return `${u.protocol}//${u.host}${u.pathname === '/' ? '' : u.pathname}`;
}

/** A key for messages and plans: quoted (keys may hold spaces, quotes, newlines), long ones shortened. */
export function showKey(key: string, max = 200): string {
  const q = JSON.stringify(key);
  return q.length <= max ? q : `${q.slice(0, max - 1)}…" (${Buffer.byteLength(key)} bytes)`;
}

/**
 * A key from ListObjectsV2. We ask for encoding-type=url (XML cannot carry every byte a key may hold); a store
 * that applied it says so in the response, and encodes like Go's url.QueryEscape ("+" for a space). A store that
 * ignored it returns raw keys, which must not be decoded ("%41" is a legal key).
 */
export function decodeListedKey(key: string, encodingType: string | undefined): string {
  return encodingType === 'url' ? decodeURIComponent(key.replace(/\+/g, ' ')) : key;
}

/** Same key (the map lookup), same size, ETag and LastModified: the object did not change since the previous set. */
export function unchanged(prev: Pick<IndexEntry, 'size' | 'etag' | 'lastModified'>, now: Listed): boolean {
  return prev.size === now.size && prev.etag === now.etag && prev.lastModified === now.lastModified && now.etag !== '';
}

const SHA = /^[0-9a-f]{64}$/;
const isStringMap = (v: unknown): v is Record<string, string> =>
  typeof v === 'object' && v !== null && !Array.isArray(v) && Object.values(v).every((x) => typeof x === 'string');

/** Parse and check one index line; throws an Error naming the line when it is not what we write. */
export function parseIndexLine(line: string, where: string): IndexEntry {
  let v: Partial<IndexEntry>;
  try {
    v = JSON.parse(line) as Partial<IndexEntry>;
  } catch {
    throw new Error(`${where}: not JSON`);
  }
  const ok =
    typeof v === 'object' && v !== null &&
    typeof v.key === 'string' && Number.isSafeInteger(v.size) && v.size! >= 0 &&
    typeof v.etag === 'string' && typeof v.lastModified === 'string' &&
    typeof v.sha256 === 'string' && SHA.test(v.sha256) && typeof v.file === 'string' && isStringMap(v.metadata) &&
    (['contentType', 'cacheControl', 'contentDisposition', 'contentEncoding', 'contentLanguage'] as const).every((k) => v[k] === undefined || typeof v[k] === 'string');
  if (!ok) throw new Error(`${where}: not an index entry`);
  return v as IndexEntry;
}

/** S3 bucket naming rules (the strict, portable subset): 3-63 chars of a-z 0-9 . -, starting and ending alphanumeric. */
export function isValidBucketName(name: string): boolean {
  return /^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$/.test(name) && !name.includes('..') && !/^\d+\.\d+\.\d+\.\d+$/.test(name);
}

/** A bucket named like a --deep drill's scratch copy (scratchBucketName). */
export function isScratchBucket(name: string): boolean {
  return /^llc-scratch-[a-z0-9-]+-\d+$/.test(name);
}

/** Scratch bucket for a --deep drill: derived from the drill's tag, a valid bucket name, never a live one's. */
export function scratchBucketName(tag: string, index: number): string {
  const suffix = `-${index}`;
  const core = `llc-scratch-${tag.toLowerCase().replace(/[^a-z0-9]+/g, '-')}`.slice(0, 63 - suffix.length).replace(/-+$/, '');
  return `${core}${suffix}`;
}

export interface Part {
  partNumber: number;
  start: number;
  /** Inclusive, as fs.createReadStream wants it. */
  end: number;
}

/** Parts of a multipart upload: at most 10,000 (S3's limit), each at least partSize. */
export function planParts(size: number, partSize: number): Part[] {
  const each = Math.max(partSize, Math.ceil(size / 10_000));
  const parts: Part[] = [];
  for (let start = 0, n = 1; start < size; start += each, n++) parts.push({ partNumber: n, start, end: Math.min(size, start + each) - 1 });
  return parts;
}

export interface TargetState {
  bucket: string;
  target: string;
  exists: boolean;
  /** Objects found in the target (the first page, at most 1000, when not --force). */
  present: number;
  presentMore: boolean;
  /** With --force: keys in the target that the backup does not hold (deleted after the upload). */
  extras: string[];
  objects: number;
  bytes: number;
}

/** Plan lines for one bucket, or the reason to refuse it. Scratch targets must be new or empty. */
export function bucketRestoreStep(t: TargetState, opts: { force: boolean; scratch: boolean }): { step: string; refusal?: string } {
  const what = `${t.objects} objects (${t.bytes} bytes) of bucket ${t.bucket}`;
  if (!t.exists) return { step: `create bucket ${t.target}, upload ${what}` };
  if (t.present === 0) return { step: `upload ${what} into existing empty bucket ${t.target}` };
  const holds = `${t.present}${t.presentMore ? '+' : ''} objects`;
  if (opts.scratch) return { step: '', refusal: `scratch bucket ${t.target} already exists and holds ${holds}` };
  if (!opts.force) return { step: '', refusal: `bucket ${t.target} is not empty (${holds}): pass --force to make it exactly the backup` };
  const shown = t.extras.slice(0, 20).map((k) => showKey(k, 120));
  const more = t.extras.length > shown.length ? ` and ${t.extras.length - shown.length} more` : '';
  const del = t.extras.length ? `; then delete ${t.extras.length} objects the backup does not hold: ${shown.join(', ')}${more}` : '';
  return { step: `upload ${what} into bucket ${t.target}, replacing keys that exist there${del}` };
}

/** XML character data as text: the five named entities and numeric references. */
export function xmlUnescape(s: string): string {
  if (!s.includes('&')) return s;
  return s.replace(/&(?:(lt|gt|quot|apos|amp)|#(\d+)|#x([0-9a-fA-F]+));/g, (m, name: string | undefined, dec: string | undefined, hex: string | undefined) => {
    if (name) return { lt: '<', gt: '>', quot: '"', apos: "'", amp: '&' }[name as 'lt']!;
    const cp = dec !== undefined ? Number(dec) : parseInt(hex!, 16);
    return cp <= 0x10ffff ? String.fromCodePoint(cp) : m;
  });
}

export interface ListPage {
  objects: Listed[];
  truncated: boolean;
  token?: string;
}

/** The text of each <name>...</name> directly in `xml` (first only), unescaped; undefined when absent. */
function element(xml: string, name: string): string | undefined {
  const open = xml.indexOf(`<${name}>`);
  if (open < 0) return xml.includes(`<${name}/>`) ? '' : undefined;
  const start = open + name.length + 2;
  const end = xml.indexOf(`</${name}>`, start);
  if (end < 0) throw new Error(`ListObjectsV2: <${name}> is not closed`);
  return xmlUnescape(xml.slice(start, end));
}

/**
 * One ListObjectsV2 answer (ListBucketResult) as the objects it lists, in order, and where the listing goes on.
 * Keys are decoded per the EncodingType the store says it applied; LastModified is normalised to ISO-8601 with
 * milliseconds, as the index records it.
 */
export function parseListPage(xml: string): ListPage {
  if (!xml.includes('<ListBucketResult')) throw new Error(`ListObjectsV2: not a ListBucketResult: ${xml.slice(0, 120)}`);
  const head = xml.slice(0, xml.indexOf('<Contents>') >= 0 ? xml.indexOf('<Contents>') : xml.length);
  const tail = xml.slice(xml.lastIndexOf('</Contents>') >= 0 ? xml.lastIndexOf('</Contents>') : 0);
  // EncodingType and the paging elements may come before or after the <Contents> entries.
  const meta = (name: string) => element(head, name) ?? element(tail, name);
  const encodingType = meta('EncodingType');
  const objects: Listed[] = [];
  for (let at = xml.indexOf('<Contents>'); at >= 0; at = xml.indexOf('<Contents>', at)) {
    const end = xml.indexOf('</Contents>', at);
    if (end < 0) throw new Error('ListObjectsV2: <Contents> is not closed');
    const c = xml.slice(at + 10, end);
    at = end + 11;
    const key = element(c, 'Key');
    if (key === undefined) continue;
    const modified = element(c, 'LastModified');
    const date = modified ? new Date(modified) : undefined;
    objects.push({
      key: decodeListedKey(key, encodingType),
      size: Number(element(c, 'Size') ?? 0),
      etag: element(c, 'ETag') ?? '',
      lastModified: date && !Number.isNaN(date.getTime()) ? date.toISOString() : '',
    });
  }
  const truncated = meta('IsTruncated') === 'true';
  const token = meta('NextContinuationToken');
  return { objects, truncated, ...(token ? { token } : {}) };
}
