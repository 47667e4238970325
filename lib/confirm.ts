// Confirmation for destructive steps: --yes, or a typed answer on a TTY. Without either, refuse (exit 5), never assume.
import { createInterface } from 'node:readline/promises';
import { RefusedError } from './errors.ts';

export interface ConfirmOptions {
  yes: boolean;
  /** What the operator must type, e.g. the set id or the word "yes". */
  expect: string;
  question: string;
  input?: NodeJS.ReadableStream & { isTTY?: boolean };
  output?: NodeJS.WritableStream;
}

export async function confirm(opts: ConfirmOptions): Promise<void> {
  if (opts.yes) return;
  const input = opts.input ?? process.stdin;
  if (!input.isTTY) throw new RefusedError(`${opts.question}: no TTY to ask on; pass --yes to confirm`);
  const rl = createInterface({ input, output: opts.output ?? process.stderr });
  try {
    const answer = (await rl.question(`${opts.question}\nType ${opts.expect} to continue: `)).trim();
    if (answer !== opts.expect) throw new RefusedError(`not confirmed (expected "${opts.expect}")`);
  } finally {
    rl.close();
  }
}
