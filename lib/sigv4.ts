// AWS Signature Version 4 for one request with headers (pure): canonical request, string to sign, HMAC chain and the
// Authorization header. Used for S3 GetObject, where the SDK's per-request machinery costs more CPU than the download.
import { createHash, createHmac, createSecretKey, type KeyObject } from 'node:crypto';

export interface SigV4Scope {
  accessKeyId: string;
  secretAccessKey: string;
  region: string;
  service: string;
}

export interface SigV4Request {
  method: string;
  /** The canonical URI: already URI-encoded exactly as sent (S3 encodes once; see s3KeyPath). */
  path: string;
  /** The canonical query string (sorted, encoded), '' for none. */
  query?: string;
  /** Every header to sign, `host` and `x-amz-date` included; names in any case. */
  headers: Record<string, string>;
  /** Hex sha256 of the body, or 'UNSIGNED-PAYLOAD' (S3 only). */
  payloadHash: string;
}

export const UNSIGNED_PAYLOAD = 'UNSIGNED-PAYLOAD';
export const EMPTY_SHA256 = 'e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855';

/** 20150830T123600Z: the x-amz-date form of a time. */
export function amzDate(d: Date): string {
  return d.toISOString().replace(/[-:]/g, '').replace(/\.\d{3}/, '');
}

/**
 * RFC 3986 encoding as SigV4 wants it: every byte of the UTF-8 form except A-Z a-z 0-9 - _ . ~ as %XY (upper-case hex).
 * encodeURIComponent leaves ! ' ( ) * alone, so those are done by hand.
 */
export function uriEncode(s: string): string {
  return encodeURIComponent(s).replace(/[!'()*]/g, (c) => `%${c.charCodeAt(0).toString(16).toUpperCase()}`);
}

/** An S3 object key as a URI path (no leading slash): each '/'-separated segment encoded, the slashes kept. */
export function s3KeyPath(key: string): string {
  return key.split('/').map(uriEncode).join('/');
}

const hmac = (key: Buffer | string, data: string): Buffer => createHmac('sha256', key).update(data, 'utf8').digest();
const sha256Hex = (data: string): string => createHash('sha256').update(data, 'utf8').digest('hex');

/** Header values trimmed, inner runs of spaces collapsed (the spec's Trimall). */
const trimAll = (v: string) => v.trim().replace(/ +/g, ' ');

export function canonicalRequest(r: SigV4Request): { text: string; signedHeaders: string } {
  const entries = Object.entries(r.headers)
    .map(([k, v]) => [k.toLowerCase(), trimAll(v)] as const)
    .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
  const signedHeaders = entries.map(([k]) => k).join(';');
  const text = [r.method, r.path, r.query ?? '', entries.map(([k, v]) => `${k}:${v}\n`).join(''), signedHeaders, r.payloadHash].join('\n');
  return { text, signedHeaders };
}

export function stringToSign(canonical: string, date: string, scope: string): string {
  return ['AWS4-HMAC-SHA256', date, scope, sha256Hex(canonical)].join('\n');
}

/** kSigning = HMAC(HMAC(HMAC(HMAC("AWS4" + secret, yyyymmdd), region), service), "aws4_request"). */
export function signingKey(secret: string, day: string, region: string, service: string): Buffer {
  return hmac(hmac(hmac(hmac(`AWS4${secret}`, day), region), service), 'aws4_request');
}

/**
 * A signer for one set of credentials: the Authorization header of a request whose `x-amz-date` header is set.
 * The signing key depends only on the day, so it is derived once per day instead of four HMACs per request.
 */
export function createSigner(c: SigV4Scope): (r: SigV4Request) => string {
  let keyDay = '';
  // A KeyObject, not the Buffer: createHmac re-imports a Buffer key on every call (~10 µs against ~2 µs).
  let key: KeyObject | undefined;
  return (r) => {
    const date = Object.entries(r.headers).find(([k]) => k.toLowerCase() === 'x-amz-date')?.[1];
    if (!date || !/^\d{8}T\d{6}Z$/.test(date)) throw new Error('sigv4: the request needs an x-amz-date header like 20150830T123600Z');
    const day = date.slice(0, 8);
    if (day !== keyDay) {
      key = createSecretKey(signingKey(c.secretAccessKey, day, c.region, c.service));
      keyDay = day;
    }
    const scope = `${day}/${c.region}/${c.service}/aws4_request`;
    const { text, signedHeaders } = canonicalRequest(r);
    const signature = createHmac('sha256', key!).update(stringToSign(text, date, scope), 'utf8').digest('hex');
    return `AWS4-HMAC-SHA256 Credential=${c.accessKeyId}/${scope}, SignedHeaders=${signedHeaders}, Signature=${signature}`;
  };
}
