// The pinning policy for compose images (pure): which references fail the check, which only warn, and why.
// A digest is the pin; a tag is what a human reads. Floating tags and missing tags fail; critical services need a digest.
import { parseImageRef, type ImageRef } from './image-ref.ts';

export interface PinningPolicy {
  /** Services whose image must carry a digest. */
  critical: string[];
  /** Tags that move (compared case-insensitively); `latest` is always among them. */
  floatingTags: string[];
}

export const DEFAULT_CRITICAL = ['postgres', 'qdrant', 'minio', 'neo4j', 'reverse-proxy'];
export const DEFAULT_FLOATING_TAGS = ['latest', 'stable', 'main', 'master', 'edge', 'nightly', 'dev', 'lts', 'current', 'mainline', 'alpine', 'slim'];

export const DEFAULT_POLICY: PinningPolicy = { critical: DEFAULT_CRITICAL, floatingTags: DEFAULT_FLOATING_TAGS };

/** Build the policy from the optional `pinning` config section; absent keys keep their defaults. */
export function pinningPolicy(section?: { critical?: readonly string[]; floatingTags?: readonly string[] }): PinningPolicy {
  const floating = section?.floatingTags ?? DEFAULT_FLOATING_TAGS;
  return {
    critical: [...(section?.critical ?? DEFAULT_CRITICAL)],
    // `latest` is what an untagged reference means: it can never be configured away.
    floatingTags: [...new Set(['latest', ...floating.map((t) => t.toLowerCase())])],
  };
}

export type Severity = 'error' | 'warning';

export type Rule =
  | 'no-image'
  | 'unresolved-variable'
  | 'invalid-reference'
  | 'missing-tag'
  | 'floating-tag'
  | 'critical-needs-digest'
  | 'digest-todo'
  | 'stale-digest-todo'
  | 'no-digest'
  | 'digest-only'
  | 'major-only'
  // Set by --resolve / --write, not by checkImage.
  | 'resolve-failed'
  | 'digest-mismatch'
  | 'not-written';

export interface Finding {
  severity: Severity;
  rule: Rule;
  message: string;
}

export interface ImageInput {
  service: string;
  /** As written, before interpolation; undefined when the service names no image. */
  raw?: string;
  /** After interpolation. */
  value?: string;
  interpolationErrors: string[];
  /** The service has a build: section. */
  builds?: boolean;
  /** Why a service that names no image needs none in its file: an override file's (the base file names it). */
  inherits?: string;
  /** What is wrong with where the image should come from (extends of a missing service, a circle, ...). */
  inheritError?: string;
  /** Reason of a `# TODO digest: <reason>` marker next to the image line. */
  todoDigest?: string;
}

export interface ImageVerdict {
  ref?: ImageRef;
  findings: Finding[];
}

const err = (rule: Rule, message: string): Finding => ({ severity: 'error', rule, message });
const warn = (rule: Rule, message: string): Finding => ({ severity: 'warning', rule, message });

/** Judge one service image. Every finding says what to do about it. */
export function checkImage(input: ImageInput, policy: PinningPolicy = DEFAULT_POLICY): ImageVerdict {
  if (input.raw === undefined) {
    // A service that builds its image has nothing to pin here, nor one whose image is checked where it is named
    // (the service it extends, the file an override file is laid over); one with none of these is broken.
    if (input.inheritError) return { findings: [err('no-image', input.inheritError)] };
    return { findings: input.builds || input.inherits ? [] : [err('no-image', 'no image: and no build: (name a pinned image)')] };
  }
  if (input.interpolationErrors.length > 0) {
    return { findings: input.interpolationErrors.map((e) => err('unresolved-variable', `image "${input.raw}": ${e}`)) };
  }
  const value = input.value ?? input.raw;
  const parsed = parseImageRef(value);
  const shown = value === input.raw ? `"${value}"` : `"${input.raw}" (= "${value}")`;
  if (!parsed.ok) return { findings: [err('invalid-reference', `image ${shown}: ${parsed.error}`)] };
  const ref = parsed.ref;
  const findings: Finding[] = [];
  const critical = policy.critical.includes(input.service);
  const floating = ref.tag !== undefined && policy.floatingTags.includes(ref.tag.toLowerCase());

  if (ref.tag === undefined && ref.digest === undefined) {
    findings.push(err('missing-tag', `image ${shown} has no tag, so it means :latest (pin an exact version tag)`));
  } else if (floating) {
    findings.push(
      err(
        'floating-tag',
        ref.digest
          ? `image ${shown} names the floating tag "${ref.tag}": the digest pins it, but name the version it is instead`
          : `image ${shown} uses the floating tag "${ref.tag}" (pin an exact version tag)`,
      ),
    );
  } else if (ref.tag === undefined) {
    findings.push(warn('digest-only', `image ${shown} is pinned by digest but names no version (add the version tag before the @)`));
  }

  if (ref.digest === undefined && (ref.tag === undefined || floating)) return { ref, findings };
  // "15", "v2", "22-bookworm-slim": a major version alone moves to each of its releases. Four digits and more are
  // build numbers or dates, which usually do not move.
  const major = ref.digest === undefined && ref.tag !== undefined ? /^v?(\d{1,3})(?:-[A-Za-z][\w.-]*)?$/.exec(ref.tag) : null;
  if (major) findings.push(warn('major-only', `image ${shown} names only major version ${major[1]}: it moves to every ${major[1]}.x release (pin the full version, or add a digest)`));
  if (ref.digest === undefined) {
    if (critical && input.todoDigest) {
      findings.push(warn('digest-todo', `critical service without a digest, acknowledged by "TODO digest: ${input.todoDigest}" (run check-pinning --resolve --write where the registry is reachable)`));
    } else if (critical) {
      findings.push(err('critical-needs-digest', `critical service: image ${shown} needs a digest (run check-pinning --resolve --write, or mark "# TODO digest: <reason>")`));
    } else {
      const how = value === input.raw ? 'check-pinning --resolve --write adds one' : 'check-pinning --resolve prints its digest';
      findings.push(warn('no-digest', `image ${shown} has no digest: the tag can be re-pushed (${how})`));
    }
  } else if (input.todoDigest) {
    findings.push(warn('stale-digest-todo', 'the image has a digest: remove its "TODO digest" comment'));
  }
  return { ref, findings };
}

/** True when any finding fails the check. */
export function hasViolation(findings: Finding[]): boolean {
  return findings.some((f) => f.severity === 'error');
}
