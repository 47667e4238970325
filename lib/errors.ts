// Exit codes of the command contract (DESIGN.md §4) and the errors that carry them.
export const EXIT = {
  ok: 0,
  failed: 1,
  usage: 2,
  locked: 3,
  verify: 4,
  refused: 5,
} as const;
export type ExitCode = (typeof EXIT)[keyof typeof EXIT];

/** An error that knows which exit code it means. Scripts let these reach their top-level catch. */
export class OpsError extends Error {
  constructor(
    message: string,
    readonly exitCode: ExitCode = EXIT.failed,
    readonly details: string[] = [],
  ) {
    super(message);
    this.name = new.target.name;
  }
}

/** Bad flags or invalid config: exit 2. `details` holds one line per problem. */
export class UsageError extends OpsError {
  constructor(message: string, details: string[] = []) {
    super(message, EXIT.usage, details);
  }
}

export class LockedError extends OpsError {
  constructor(message: string) {
    super(message, EXIT.locked);
  }
}

/** Checksums, missing artifacts, stale sets, counts that differ: exit 4. */
export class VerifyError extends OpsError {
  constructor(message: string, details: string[] = []) {
    super(message, EXIT.verify, details);
  }
}

/** A safety check said no (non-empty target, no confirmation, version mismatch): exit 5. */
export class RefusedError extends OpsError {
  constructor(message: string, details: string[] = []) {
    super(message, EXIT.refused, details);
  }
}

/** A step of a source failed: exit 1, the message names source and step. */
export class StepError extends OpsError {
  constructor(
    readonly source: string,
    readonly step: string,
    message: string,
    options?: { cause?: unknown },
  ) {
    super(`${source}: ${step}: ${message}`, EXIT.failed);
    if (options?.cause !== undefined) this.cause = options.cause;
  }
}

export function exitCodeOf(err: unknown): ExitCode {
  return err instanceof OpsError ? err.exitCode : EXIT.failed;
}
