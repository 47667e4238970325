// A small OCI distribution client: the digest a registry serves for a tag (HEAD .../manifests/<tag>),
// with anonymous Bearer token auth (WWW-Authenticate realm), and GET + sha256 when Docker-Content-Digest is missing.
import { createHash } from 'node:crypto';
import { digestError, type ImageRef } from './image-ref.ts';
import { OpsError } from './errors.ts';

/** Every manifest kind a tag can point at; asking for all keeps the registry from converting (and re-digesting) it. */
export const MANIFEST_MEDIA_TYPES = [
  'application/vnd.oci.image.index.v1+json',
  'application/vnd.docker.distribution.manifest.list.v2+json',
  'application/vnd.oci.image.manifest.v1+json',
  'application/vnd.docker.distribution.manifest.v2+json',
] as const;

export interface RegistryOptions {
  /** Hosts reached over plain HTTP; loopback hosts always are (as Docker treats them). */
  insecureHosts?: string[];
  fetch?: typeof fetch;
  timeoutMs?: number;
  signal?: AbortSignal;
}

export interface ResolvedDigest {
  digest: string;
  mediaType?: string;
  /** How the digest was learned. */
  source: 'header' | 'body';
}

export class RegistryError extends OpsError {
  constructor(message: string) {
    super(message);
  }
}

/** The API host for a registry domain: Docker Hub's API lives on registry-1.docker.io. */
export function registryHost(domain: string): string {
  return domain === 'docker.io' ? 'registry-1.docker.io' : domain;
}

function isLoopback(domain: string): boolean {
  const host = domain.startsWith('[') ? domain.slice(0, domain.indexOf(']') + 1) : domain.replace(/:\d+$/, '');
  return host === 'localhost' || host === '[::1]' || /^127\.\d+\.\d+\.\d+$/.test(host);
}

export function registryBaseUrl(domain: string, insecureHosts: string[] = []): string {
  const scheme = isLoopback(domain) || insecureHosts.includes(domain) ? 'http' : 'https';
  return `${scheme}://${registryHost(domain)}`;
}

export function manifestUrl(ref: ImageRef, reference: string, insecureHosts: string[] = []): string {
  return `${registryBaseUrl(ref.domain, insecureHosts)}/v2/${ref.path}/manifests/${encodeURIComponent(reference)}`;
}

/** Parse `Bearer realm="...",service="...",scope="..."` (quoted values may contain commas). */
export function parseBearerChallenge(header: string): Record<string, string> | undefined {
  const m = /^\s*Bearer\s+(.*)$/i.exec(header);
  if (!m?.[1]) return undefined;
  const params: Record<string, string> = {};
  const re = /([A-Za-z_]+)\s*=\s*(?:"((?:[^"\\]|\\.)*)"|([^,\s]*))/g;
  for (const p of m[1].matchAll(re)) {
    if (p[1]) params[p[1].toLowerCase()] = p[2] !== undefined ? p[2].replace(/\\(.)/g, '$1') : (p[3] ?? '');
  }
  return params.realm ? params : undefined;
}

function withTimeout(signal: AbortSignal | undefined, ms: number): AbortSignal {
  const t = AbortSignal.timeout(ms);
  return signal ? AbortSignal.any([signal, t]) : t;
}

export class RegistryClient {
  private readonly fetchFn: typeof fetch;
  private readonly timeoutMs: number;
  /** Tokens per realm+scope, so one run asks the token server once per repository. */
  private readonly tokens = new Map<string, string>();
  /** The token last used for a repository, sent up front on its next request (saves a 401 round trip). */
  private readonly repoTokens = new Map<string, string>();

  constructor(private readonly opts: RegistryOptions = {}) {
    this.fetchFn = opts.fetch ?? fetch;
    this.timeoutMs = opts.timeoutMs ?? 30_000;
  }

  private async token(challenge: Record<string, string>, ref: ImageRef): Promise<string> {
    const scope = challenge.scope ?? `repository:${ref.path}:pull`;
    const key = `${challenge.realm} ${challenge.service ?? ''} ${scope}`;
    const cached = this.tokens.get(key);
    if (cached) return cached;
    const url = new URL(challenge.realm!);
    if (challenge.service) url.searchParams.set('service', challenge.service);
    url.searchParams.set('scope', scope);
    // Anonymous pull tokens only: this client never holds registry credentials.
    const res = await this.fetchFn(url, { signal: withTimeout(this.opts.signal, this.timeoutMs) });
    if (!res.ok) throw new RegistryError(`token request to ${url.origin}${url.pathname} for ${ref.path}: HTTP ${res.status}`);
    const body = (await res.json()) as { token?: string; access_token?: string };
    const token = body.token ?? body.access_token;
    if (!token) throw new RegistryError(`token response from ${url.origin}${url.pathname} carries no token`);
    this.tokens.set(key, token);
    return token;
  }

  /** One request, answering a Bearer challenge once. */
  private async request(method: 'HEAD' | 'GET', url: string, ref: ImageRef): Promise<Response> {
    const headers: Record<string, string> = { accept: MANIFEST_MEDIA_TYPES.join(', ') };
    const repo = `${ref.domain}/${ref.path}`;
    const known = this.repoTokens.get(repo);
    if (known) headers.authorization = `Bearer ${known}`;
    let res = await this.fetchFn(url, { method, headers, signal: withTimeout(this.opts.signal, this.timeoutMs) });
    if (res.status === 401) {
      const challenge = parseBearerChallenge(res.headers.get('www-authenticate') ?? '');
      if (!challenge) throw new RegistryError(`${method} ${url}: HTTP 401 without a Bearer challenge (credentials needed?)`);
      await res.body?.cancel();
      if (known) this.tokens.clear(); // expired: ask again
      const token = await this.token(challenge, ref);
      this.repoTokens.set(repo, token);
      headers.authorization = `Bearer ${token}`;
      res = await this.fetchFn(url, { method, headers, signal: withTimeout(this.opts.signal, this.timeoutMs) });
    }
    return res;
  }

  /** The digest the registry serves for `ref`'s tag (or verifies `ref`'s digest when it has no tag). */
  async resolveDigest(ref: ImageRef): Promise<ResolvedDigest> {
    const reference = ref.tag ?? ref.digest;
    if (!reference) throw new RegistryError(`${ref.original}: neither tag nor digest to resolve`);
    const url = manifestUrl(ref, reference, this.opts.insecureHosts);
    let res: Response;
    try {
      res = await this.request('HEAD', url, ref);
    } catch (err) {
      if (err instanceof RegistryError) throw err;
      throw new RegistryError(`HEAD ${url}: ${(err as Error).cause instanceof Error ? ((err as Error).cause as Error).message : (err as Error).message}`);
    }
    if (res.status === 404) throw new RegistryError(`${ref.original}: the registry has no manifest for "${reference}" (${url})`);
    // 405: a registry without HEAD support; the GET below answers the same question.
    if (!res.ok && res.status !== 405) throw new RegistryError(`HEAD ${url}: HTTP ${res.status}`);
    const mediaType = res.ok ? (res.headers.get('content-type') ?? undefined) : undefined;
    const header = res.ok ? res.headers.get('docker-content-digest') : null;
    if (header && !digestError(header)) return { digest: header, ...(mediaType ? { mediaType } : {}), source: 'header' };
    // Not every registry sends the header (it is optional in the OCI spec): hash the manifest bytes instead.
    let got: Response;
    try {
      got = await this.request('GET', url, ref);
    } catch (err) {
      if (err instanceof RegistryError) throw err;
      throw new RegistryError(`GET ${url}: ${(err as Error).message}`);
    }
    if (!got.ok) throw new RegistryError(`GET ${url}: HTTP ${got.status}`);
    const body = Buffer.from(await got.arrayBuffer());
    const digest = `sha256:${createHash('sha256').update(body).digest('hex')}`;
    const gotType = got.headers.get('content-type') ?? mediaType;
    return { digest, ...(gotType ? { mediaType: gotType } : {}), source: 'body' };
  }
}
