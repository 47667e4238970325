// Parallel table-data load: the script `pg_restore -L <TABLE DATA entries> -f -` writes (session SETs, then one
// `COPY ... FROM stdin;` block per table) is cut at row boundaries and spread over several psql sessions, so one
// big table loads on every core instead of one. Rows of a COPY text block are independent lines (a newline inside
// a value is written as \n), so any cut between lines is a valid COPY of its own. Pure stream logic: the caller
// starts the psql sessions and owns their exits.
import { once } from 'node:events';
import type { Writable } from 'node:stream';

/** A session to feed: its stdin, and a promise that settles when it exits (rejecting on failure). */
export interface CopyWorker {
  stdin: Writable;
  exited: Promise<unknown>;
  /** Called with each COPY statement (header line) this worker is sent, in the order it runs them. */
  onCopy?: (header: string) => void;
}

export interface CopyStats {
  /** COPY blocks seen, and how many held rows. */
  blocks: number;
  /** The header of every COPY block seen, in order, those without rows too: the tables the archive has data of. */
  headers: string[];
  loaded: number;
  /** Bytes of row data handed to the workers. */
  bytes: number;
  workers: number;
}

/** A problem with the stream itself (not with a worker): a truncated or unexpected pg_restore output. */
export class CopyStreamError extends Error {}

const TERMINATOR = Buffer.from('\\.\n');
const END_OF_BLOCK = Buffer.from('\n\\.\n');
const NL = 0x0a;
/** Bytes we let queue in one worker's stdin before waiting: enough to keep it busy, bounded memory. */
const QUEUE_LIMIT = 1 << 20;

/** Session settings pg_restore puts before the data: `SET name = value;` and its search_path reset. */
const SETTING = /^(?:SET [a-z_]+ = (?:'[^'\\\n]*'|[A-Za-z0-9_.-]+);|SELECT pg_catalog\.set_config\('search_path', '', false\);)$/;
/** pg_dump 15.14+/16.10+ guards plain scripts with \restrict KEY ... \unrestrict KEY; the workers get no meta-commands at all. */
const RESTRICT = /^\\(?:un)?restrict [A-Za-z0-9]+$/;

/**
 * The identifier starting at text[i], as pg_dump writes one: bare (lower-case) or double-quoted, where "" is a
 * quote inside it and anything else (newlines too) may appear. 'open' when a quoted one does not end within
 * `text`; null when none starts there.
 */
function identifierAt(text: string, i: number): { name: string; end: number } | 'open' | null {
  if (text[i] !== '"') {
    const bare = /^[a-z_][a-z0-9_$]*/.exec(text.slice(i));
    return bare ? { name: bare[0], end: i + bare[0].length } : null;
  }
  let name = '';
  for (i++; ; ) {
    const close = text.indexOf('"', i);
    if (close < 0) return 'open';
    name += text.slice(i, close);
    i = close + 1;
    if (text[i] !== '"') return { name, end: i };
    name += '"';
    i++;
  }
}

/**
 * A complete COPY header as pg_restore writes it: `COPY <qualified name> (<columns>) FROM stdin;`, identifiers bare
 * (lower-case) or double-quoted; a quoted one may hold anything, newlines included. Returns false while a quoted
 * identifier is still open (the header continues on the next line); throws on anything else.
 */
export function copyHeaderComplete(text: string): boolean {
  if (!text.startsWith('COPY ')) throw new CopyStreamError(`not a COPY statement: ${text.slice(0, 80)}`);
  let i = 5;
  while (i < text.length) {
    if (text.slice(i) === ' FROM stdin;') return true;
    const id = identifierAt(text, i);
    if (id === 'open') return false;
    if (id) {
      i = id.end;
      continue;
    }
    if (' .,()'.includes(text[i]!)) {
      i++;
      continue;
    }
    throw new CopyStreamError(`unexpected COPY statement: ${text.slice(0, 120)}`);
  }
  return false;
}

/**
 * The table a complete COPY header loads, as `schema.table` with the identifiers unquoted (the form the manifest's
 * row counts use), or null when the header names no schema-qualified table.
 */
export function copyTarget(text: string): string | null {
  const parts: string[] = [];
  let i = 5; // after 'COPY '
  for (;;) {
    const id = identifierAt(text, i);
    if (id === null || id === 'open') return null;
    parts.push(id.name);
    i = id.end;
    if (text[i] !== '.') break;
    i++;
  }
  return parts.length === 2 && /^ (?:\(| FROM stdin;)/.test(text.slice(i)) ? `${parts[0]}.${parts[1]}` : null;
}

interface Slot {
  worker: CopyWorker;
  /** Header of the COPY this worker is in, or null between blocks. */
  copying: string | null;
  dead: boolean;
}

/**
 * Read pg_restore's data script from `source` and load it through up to `parallel` workers (started on the first
 * block that has rows). Ends every worker's stdin when done (after `epilogue`); the caller awaits their exits. Throws CopyStreamError
 * when the stream is not what pg_restore writes or ends inside a block (a truncated archive).
 */
export async function loadCopyStream(source: AsyncIterable<Buffer>, opts: { parallel: number; start: () => CopyWorker; epilogue?: string }): Promise<CopyStats> {
  const slots: Slot[] = [];
  let turn = 0;
  const prelude: string[] = [];
  const stats: CopyStats = { blocks: 0, headers: [], loaded: 0, bytes: 0, workers: 0 };
  /** sql: between blocks (settings, comments, COPY headers); copy: inside a block's rows. Set from closures too. */
  const state: { mode: 'sql' | 'copy' } = { mode: 'sql' };
  let header = '';
  let pendingHeader: string | null = null;
  let blockHasRows = false;
  /** Bytes of the current unfinished line (sql mode: text; copy mode: row data not yet handed out). */
  let carry: Buffer[] = [];
  let carryLength = 0;

  const write = (slot: Slot, data: string | Buffer): void => {
    if (slot.dead) throw new CopyStreamError('a load session ended early');
    slot.worker.stdin.write(data);
  };

  const startWorkers = () => {
    while (slots.length < opts.parallel) {
      const worker = opts.start();
      const slot: Slot = { worker, copying: null, dead: false };
      // A worker that dies must not leave us waiting for a drain that never comes.
      worker.exited.then(
        () => (slot.dead = true),
        () => (slot.dead = true),
      );
      worker.stdin.on('error', () => (slot.dead = true));
      slots.push(slot);
      for (const line of prelude) worker.stdin.write(`${line}\n`);
    }
    stats.workers = slots.length;
  };

  /** The worker with the least queued, after waiting while every one is full. */
  const pick = async (): Promise<Slot> => {
    for (;;) {
      const live = slots.filter((s) => !s.dead);
      if (live.length < slots.length) throw new CopyStreamError('a load session ended early');
      // Least queued first; ties go round, so sessions that keep up still share the work.
      turn = (turn + 1) % live.length;
      const order = [...live.slice(turn), ...live.slice(0, turn)];
      const best = order.reduce((a, b) => (b.worker.stdin.writableLength < a.worker.stdin.writableLength ? b : a));
      if (best.worker.stdin.writableLength < QUEUE_LIMIT) return best;
      await Promise.race(live.flatMap((s) => [once(s.worker.stdin, 'drain'), s.worker.exited.catch(() => {})]));
    }
  };

  const sendRows = async (pieces: Buffer[]) => {
    const size = pieces.reduce((a, p) => a + p.length, 0);
    if (size === 0) return;
    if (!blockHasRows) {
      blockHasRows = true;
      stats.loaded++;
      startWorkers();
    }
    const slot = await pick();
    if (slot.copying !== header) {
      if (slot.copying !== null) write(slot, TERMINATOR);
      write(slot, header);
      slot.copying = header;
      slot.worker.onCopy?.(header);
    }
    for (const p of pieces) write(slot, p);
    stats.bytes += size;
  };

  const sqlLine = async (line: string) => {
    if (pendingHeader !== null) {
      pendingHeader += `\n${line}`;
      if (copyHeaderComplete(pendingHeader)) beginBlock(pendingHeader);
      return;
    }
    if (line === '' || line.startsWith('--') || RESTRICT.test(line)) return;
    if (SETTING.test(line)) {
      prelude.push(line);
      // Sessions already running take the setting too, between blocks.
      for (const slot of slots) {
        if (slot.copying !== null) write(slot, TERMINATOR);
        slot.copying = null;
        write(slot, `${line}\n`);
      }
      return;
    }
    if (line.startsWith('COPY ')) {
      if (copyHeaderComplete(line)) beginBlock(line);
      else pendingHeader = line;
      return;
    }
    throw new CopyStreamError(`unexpected line in pg_restore's data script: ${line.slice(0, 120)}`);
  };

  const beginBlock = (text: string) => {
    pendingHeader = null;
    header = `${text}\n`;
    state.mode = 'copy';
    blockHasRows = false;
    stats.blocks++;
    stats.headers.push(header);
  };

  const take = (): Buffer => {
    const b = carry.length === 1 ? carry[0]! : Buffer.concat(carry, carryLength);
    carry = [];
    carryLength = 0;
    return b;
  };

  for await (const chunk of source) {
    let buf: Buffer = chunk;
    while (buf.length > 0) {
      if (state.mode === 'sql') {
        const nl = buf.indexOf(NL);
        if (nl < 0) {
          carry.push(buf);
          carryLength += buf.length;
          break;
        }
        carry.push(buf.subarray(0, nl));
        carryLength += nl;
        const line = take().toString('utf8');
        buf = buf.subarray(nl + 1);
        await sqlLine(line);
        continue;
      }
      // copy mode: the carry, if any, is the start of a line.
      if (carryLength > 0 && carryLength < TERMINATOR.length) {
        // A short line start might be the terminator split across reads: join just enough to tell.
        const head = Buffer.concat([...carry, buf.subarray(0, TERMINATOR.length)]);
        if (head.length >= TERMINATOR.length || head.includes(NL)) {
          if (head.subarray(0, TERMINATOR.length).equals(TERMINATOR)) {
            buf = buf.subarray(TERMINATOR.length - carryLength);
            carry = [];
            carryLength = 0;
            state.mode = 'sql';
            continue;
          }
        }
      } else if (carryLength === 0 && buf.subarray(0, TERMINATOR.length).equals(TERMINATOR)) {
        buf = buf.subarray(TERMINATOR.length);
        state.mode = 'sql';
        continue;
      }
      const end = buf.indexOf(END_OF_BLOCK);
      if (end >= 0) {
        await sendRows([...carry, buf.subarray(0, end + 1)]);
        carry = [];
        carryLength = 0;
        buf = buf.subarray(end + END_OF_BLOCK.length);
        state.mode = 'sql';
        continue;
      }
      const lastNl = buf.lastIndexOf(NL);
      if (lastNl < 0) {
        carry.push(buf);
        carryLength += buf.length;
        break;
      }
      await sendRows([...carry, buf.subarray(0, lastNl + 1)]);
      carry = [];
      carryLength = 0;
      buf = buf.subarray(lastNl + 1);
    }
  }
  if (state.mode === 'copy' || pendingHeader !== null) throw new CopyStreamError('the data script ended inside a COPY block: the archive is truncated');
  if (carryLength > 0) {
    const rest = take().toString('utf8');
    if (rest.trim() !== '') await sqlLine(rest);
  }
  for (const slot of slots) {
    if (slot.copying !== null && !slot.dead) slot.worker.stdin.write(TERMINATOR);
    // What a session runs after its last block (the COMMIT of a session that loads in one transaction).
    if (opts.epilogue && !slot.dead) slot.worker.stdin.write(opts.epilogue);
    slot.worker.stdin.end();
  }
  return stats;
}

/**
 * Rows stored per table (`schema.table`) of every table the archive has a COPY block of (`blocks`: a block without
 * rows is a table with none), from the "COPY n" tags psql printed for the COPY statements each session was sent,
 * in order; null when a session's tags do not pair up with its statements, its output was not kept, or a
 * statement names no table. A table split between sessions gets the sum.
 */
export function rowsCopied(blocks: string[], sessions: { headers: string[]; output: () => string | null }[]): Record<string, number> | null {
  const tableOf = new Map(blocks.map((header) => [header, copyTarget(header)]));
  if ([...tableOf.values()].includes(null)) return null;
  const rows = new Map([...tableOf.values()].map((table) => [table!, 0]));
  for (const s of sessions) {
    const output = s.output();
    if (output === null) return null;
    const tags = [...output.matchAll(/^COPY (\d+)$/gm)].map((m) => Number(m[1]));
    if (tags.length !== s.headers.length) return null;
    for (const [i, header] of s.headers.entries()) {
      const table = tableOf.get(header);
      if (!table) return null; // a COPY sent that the stream never began: not what loadCopyStream does
      rows.set(table, rows.get(table)! + tags[i]!);
    }
  }
  return Object.fromEntries(rows);
}
