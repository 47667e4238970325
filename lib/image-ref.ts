// Container image references per the distribution reference grammar, normalised as Docker does (pure).
// Grammar: github.com/distribution/reference (reference.go, normalize.go); digests as go-digest validates them.

export interface ImageRef {
  /** The text that was parsed. */
  original: string;
  /** Registry host with port, normalised: "docker.io" for Docker Hub. */
  domain: string;
  /** Repository path inside the registry, e.g. "library/postgres", "team/app". */
  path: string;
  tag?: string;
  /** "sha256:<hex>" */
  digest?: string;
  /** True when the text named no registry and docker.io was assumed. */
  defaultDomain: boolean;
}

export type ParseResult = { ok: true; ref: ImageRef } | { ok: false; error: string };

export const DEFAULT_DOMAIN = 'docker.io';
const LEGACY_DEFAULT_DOMAIN = 'index.docker.io';
const OFFICIAL_REPO_PREFIX = 'library/';
const NAME_TOTAL_LENGTH_MAX = 255;

// Building blocks exactly as in reference/regexp.go.
const ALPHANUMERIC = '[a-z0-9]+';
const SEPARATOR = '(?:[._]|__|[-]+)';
const PATH_COMPONENT = `${ALPHANUMERIC}(?:${SEPARATOR}${ALPHANUMERIC})*`;
const DOMAIN_COMPONENT = '(?:[a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9])';
const IPV6 = '\\[(?:[a-fA-F0-9:]+)\\]';
const DOMAIN_NAME = `${DOMAIN_COMPONENT}(?:\\.${DOMAIN_COMPONENT})*`;
const HOST = `(?:${DOMAIN_NAME}|${IPV6})`;
const DOMAIN = `${HOST}(?::[0-9]+)?`;

const DOMAIN_RE = new RegExp(`^${DOMAIN}$`);
const PATH_RE = new RegExp(`^${PATH_COMPONENT}(?:/${PATH_COMPONENT})*$`);
const TAG_RE = /^[\w][\w.-]{0,127}$/;
const ANCHORED_IDENTIFIER = /^[a-f0-9]{64}$/;

// go-digest's registered algorithms and their hex lengths; the hex must be lowercase.
const DIGEST_HEX_LENGTH: Record<string, number> = { sha256: 64, sha384: 96, sha512: 128 };
const DIGEST_ALGORITHM_RE = /^[a-z0-9]+(?:[.+_-][a-z0-9]+)*$/;

/** Check a digest the way go-digest's Parse + Validate do. Returns an error message or undefined. */
export function digestError(digest: string): string | undefined {
  const i = digest.indexOf(':');
  if (i <= 0 || i === digest.length - 1) return `invalid digest "${digest}": expected <algorithm>:<hex>`;
  const alg = digest.slice(0, i);
  const hex = digest.slice(i + 1);
  if (!DIGEST_ALGORITHM_RE.test(alg)) return `invalid digest algorithm "${alg}"`;
  const len = DIGEST_HEX_LENGTH[alg];
  if (len === undefined) return `unsupported digest algorithm "${alg}"`;
  if (!new RegExp(`^[a-f0-9]{${len}}$`).test(hex)) return `invalid ${alg} digest: expected ${len} lowercase hex characters`;
  return undefined;
}

/**
 * Split "name[:tag][@digest]". The tag colon is the last ':' after the last '/', so a registry port
 * ("host:5000/app") or an IPv6 host ("[::1]:5000/app") is never mistaken for a tag.
 */
function splitReference(s: string): { name: string; tag?: string; digest?: string } {
  let rest = s;
  let digest: string | undefined;
  const at = rest.indexOf('@');
  if (at !== -1) {
    digest = rest.slice(at + 1);
    rest = rest.slice(0, at);
  }
  let tag: string | undefined;
  const colon = rest.lastIndexOf(':');
  if (colon > rest.lastIndexOf('/') && colon > rest.lastIndexOf(']')) {
    tag = rest.slice(colon + 1);
    rest = rest.slice(0, colon);
  }
  return { name: rest, ...(tag !== undefined ? { tag } : {}), ...(digest !== undefined ? { digest } : {}) };
}

/**
 * Docker's splitDockerDomain: the first component names a registry only if it contains '.' or ':',
 * is "localhost", or has an uppercase letter (which then fails as a domain-less path would not).
 */
function splitDomain(name: string): { domain: string; path: string; defaultDomain: boolean } {
  const slash = name.indexOf('/');
  const first = slash === -1 ? '' : name.slice(0, slash);
  const isDomain = slash !== -1 && (/[.:]/.test(first) || first === 'localhost' || first.toLowerCase() !== first);
  if (!isDomain) {
    const path = slash === -1 ? `${OFFICIAL_REPO_PREFIX}${name}` : name;
    return { domain: DEFAULT_DOMAIN, path, defaultDomain: true };
  }
  let domain = first;
  let path = name.slice(slash + 1);
  if (domain === LEGACY_DEFAULT_DOMAIN) domain = DEFAULT_DOMAIN;
  if (domain === DEFAULT_DOMAIN && !path.includes('/')) path = `${OFFICIAL_REPO_PREFIX}${path}`;
  return { domain, path, defaultDomain: false };
}

/** Parse and normalise an image reference as `docker pull` would; never throws. */
export function parseImageRef(input: string): ParseResult {
  const fail = (error: string): ParseResult => ({ ok: false, error });
  if (input === '') return fail('empty image reference');
  if (input !== input.trim() || /\s/.test(input)) return fail('image reference contains whitespace');
  if (ANCHORED_IDENTIFIER.test(input)) return fail('a bare 64-hex identifier is an image ID, not a reference');
  const { name, tag, digest } = splitReference(input);
  if (name === '') return fail('image reference names no repository');
  if (name.length > NAME_TOTAL_LENGTH_MAX) return fail(`repository name longer than ${NAME_TOTAL_LENGTH_MAX} characters`);
  const { domain, path, defaultDomain } = splitDomain(name);
  if (!defaultDomain && !DOMAIN_RE.test(domain)) return fail(`invalid registry host "${domain}"`);
  if (path.toLowerCase() !== path) return fail(`repository name must be lowercase: "${name}"`);
  if (!PATH_RE.test(path)) return fail(`invalid repository name "${name}"`);
  if (defaultDomain && ANCHORED_IDENTIFIER.test(name)) return fail('a 64-hex repository name is not allowed');
  if (tag !== undefined && !TAG_RE.test(tag)) return fail(tag === '' ? 'empty tag after ":"' : `invalid tag "${tag}"`);
  if (digest !== undefined) {
    const e = digestError(digest);
    if (e) return fail(e);
  }
  return {
    ok: true,
    ref: { original: input, domain, path, defaultDomain, ...(tag !== undefined ? { tag } : {}), ...(digest !== undefined ? { digest } : {}) },
  };
}

/** Fully qualified name without tag or digest, e.g. "docker.io/library/postgres". */
export function canonicalName(ref: ImageRef): string {
  return `${ref.domain}/${ref.path}`;
}

/** The short name people write, e.g. "postgres", "qdrant/qdrant", "quay.io/minio/minio". */
export function familiarName(ref: ImageRef): string {
  if (ref.domain !== DEFAULT_DOMAIN) return canonicalName(ref);
  return ref.path.startsWith(OFFICIAL_REPO_PREFIX) ? ref.path.slice(OFFICIAL_REPO_PREFIX.length) : ref.path;
}

/** The reference as written, with `digest` appended (or replacing an existing one). */
export function withDigest(original: string, digest: string): string {
  const at = original.indexOf('@');
  return `${at === -1 ? original : original.slice(0, at)}@${digest}`;
}
