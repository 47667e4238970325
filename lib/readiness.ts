// The readiness contract of docs/health.md: validate a /readyz document, map status to HTTP, build one from checks.
import type { ValidateFunction } from 'ajv';
import { validate as readinessValidator } from '../schemas/readiness.validate.ts';
import type { FromSchema } from 'json-schema-to-ts';
import type { readinessSchema } from '../schemas/readiness.schema.ts';

export type Readiness = FromSchema<typeof readinessSchema>;
export type CheckStatus = Readiness['status'];
export interface Check {
  status: CheckStatus;
  latencyMs: number;
  error: string | null;
}

/** Compiled ahead of time by `npm run schemas` (ajv standalone). */
const validateDoc = readinessValidator as ValidateFunction;

/** Problems with a /readyz body, one line each (`checks.postgres.status: must be ...`); empty when it is valid. */
export function readinessErrors(doc: unknown): string[] {
  if (validateDoc(doc)) return [];
  return (validateDoc.errors ?? [])
    .filter((e) => e.keyword !== 'if')
    .map((e) => {
      const at = e.instancePath.slice(1).replace(/\//g, '.') || '(top level)';
      const extra = e.keyword === 'additionalProperties' ? ` (${String(e.params.additionalProperty)})` : e.keyword === 'enum' ? ` (${(e.params.allowedValues as unknown[]).join(', ')})` : '';
      return `${at}: ${e.message ?? e.keyword}${extra}`;
    });
}

const RANK: Record<CheckStatus, number> = { pass: 0, warn: 1, fail: 2 };

/** The overall status: the worst of the checks (no checks at all is a pass). */
export function overallStatus(checks: Record<string, Check>): CheckStatus {
  let worst: CheckStatus = 'pass';
  for (const c of Object.values(checks)) if (RANK[c.status] > RANK[worst]) worst = c.status;
  return worst;
}

/** 200 while the service can serve (pass, warn), 503 when it cannot: what load balancers and compose act on. */
export function readinessHttpStatus(status: CheckStatus): 200 | 503 {
  return status === 'fail' ? 503 : 200;
}

/** Build the document from checks: the status is derived, never set by hand, so it cannot disagree with them. */
export function readinessDocument(checks: Record<string, Check>, version?: string): Readiness {
  return { status: overallStatus(checks), ...(version ? { version } : {}), checks } as Readiness;
}

/** "postgres: connection refused; s3: slow (1200 ms)": the checks that are not pass, for one log line. */
export function summarizeChecks(doc: Readiness): string {
  const parts = Object.entries(doc.checks as Record<string, Check>)
    .filter(([, c]) => c.status !== 'pass')
    .map(([name, c]) => `${name} ${c.status}${c.error ? `: ${c.error}` : ''}`);
  return parts.join('; ');
}

/** Contract checks beyond the schema: the HTTP code and the status must agree, and so must status and checks. */
export function contractErrors(httpStatus: number, doc: Readiness): string[] {
  const errors: string[] = [];
  const expected = readinessHttpStatus(doc.status);
  if (httpStatus !== expected) errors.push(`HTTP ${httpStatus} with status "${doc.status}" (the contract says ${expected})`);
  const derived = overallStatus(doc.checks as Record<string, Check>);
  if (derived !== doc.status) errors.push(`status "${doc.status}" but the worst check is "${derived}"`);
  return errors;
}
