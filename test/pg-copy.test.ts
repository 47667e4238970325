// lib/pg-copy.ts on synthetic pg_restore data scripts: whatever the read sizes, every row reaches exactly one
// session inside a COPY of its own table, sessions get the settings and no meta-commands, and a truncated or
// unexpected script is an error. The real psql sessions are exercised in test/postgres.test.ts.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { PassThrough, Readable } from 'node:stream';
import { copyHeaderComplete, copyTarget, CopyStreamError, loadCopyStream, rowsCopied, type CopyWorker } from '../lib/pg-copy.ts';

const PRELUDE = [
  '--',
  '-- PostgreSQL database dump',
  '--',
  '',
  '\\restrict AbC123',
  '',
  "SET statement_timeout = 0;",
  "SET client_encoding = 'UTF8';",
  'SET standard_conforming_strings = on;',
  "SELECT pg_catalog.set_config('search_path', '', false);",
  'SET row_security = off;',
  '',
];

function block(header: string, rows: string[], name = 'x'): string {
  return [`--`, `-- Data for Name: ${name}; Type: TABLE DATA; Schema: public; Owner: postgres`, '--', '', header, ...rows, '\\.', '', ''].join('\n');
}

const bigRows = Array.from({ length: 5000 }, (_, i) => `${i}\tvalue ${i} ${'x'.repeat(i % 97)}\t\\\\.not a terminator\t\\N`);
const NEWLINE_HEADER = 'COPY public."new\nline ""t"" \\! x" (id, "we""ird col") FROM stdin;';
const SCRIPT =
  PRELUDE.join('\n') +
  '\n' +
  block('COPY public.empty (id) FROM stdin;', []) +
  block('COPY public.big (id, body, tail, n) FROM stdin;', bigRows) +
  block(NEWLINE_HEADER, ['1\ta', '2\tb']) +
  block('COPY "Odd Schema"."Tab""le" (x) FROM stdin;', ['\\.x', '\\\\.', '3']) +
  '\\unrestrict AbC123\n\n';

/** Sessions that record what they are sent. */
function recorders() {
  const sent: string[] = [];
  /** The headers each session's onCopy was called with. */
  const copies: string[][] = [];
  const start = (): CopyWorker => {
    const stdin = new PassThrough();
    const i = sent.push('') - 1;
    copies.push([]);
    stdin.on('data', (b: Buffer) => (sent[i] += b.toString('utf8')));
    const exited = new Promise<void>((resolve) => stdin.on('end', () => resolve()));
    return { stdin, exited, onCopy: (header) => copies[i]!.push(header) };
  };
  return { sent, copies, start };
}

/** Parse what one session received back into {table: rows} and its settings, checking its shape as psql would read it. */
function parseSession(text: string): { settings: string[]; rows: Map<string, string[]>; statements: string[] } {
  const settings: string[] = [];
  const rows = new Map<string, string[]>();
  /** Every COPY statement, in the order the session runs them. */
  const statements: string[] = [];
  const lines = text.split('\n');
  assert.equal(lines.pop(), '', 'ends with a newline');
  let i = 0;
  while (i < lines.length) {
    const line = lines[i]!;
    assert.ok(!line.startsWith('\\'), `no meta-command outside COPY data: ${line}`);
    if (line.startsWith('SET ') || line.startsWith('SELECT pg_catalog.set_config')) {
      settings.push(line);
      i++;
      continue;
    }
    let header = line;
    while (!header.endsWith(' FROM stdin;')) header += `\n${lines[++i]}`;
    statements.push(header);
    i++;
    const got = rows.get(header) ?? [];
    rows.set(header, got);
    for (; lines[i] !== '\\.'; i++) {
      assert.ok(i < lines.length, `COPY ${header} is terminated`);
      got.push(lines[i]!);
    }
    i++;
  }
  return { settings, rows, statements };
}

function chunked(text: string, sizes: () => number): Readable {
  const buf = Buffer.from(text);
  const parts: Buffer[] = [];
  for (let at = 0; at < buf.length; ) {
    const n = Math.max(1, sizes());
    parts.push(buf.subarray(at, at + n));
    at += n;
  }
  return Readable.from(parts);
}

async function load(text: string, sizes: () => number, parallel = 3) {
  const { sent, copies, start } = recorders();
  const stats = await loadCopyStream(chunked(text, sizes), { parallel, start });
  const merged = new Map<string, string[]>();
  for (const [i, s] of sent.entries()) {
    const { settings, rows, statements } = parseSession(s);
    assert.deepEqual(copies[i]!.map((h) => h.replace(/\n$/, '')), statements, 'onCopy names every COPY the session runs, in order');
    assert.deepEqual(settings, PRELUDE.filter((l) => l.startsWith('SET ') || l.startsWith('SELECT')), 'every session gets the settings first');
    for (const [h, r] of rows) merged.set(h, [...(merged.get(h) ?? []), ...r]);
  }
  return { stats, merged, sent };
}

const sorted = (xs: string[]) => [...xs].sort();

for (const [name, sizes] of [
  ['one byte at a time', () => 1],
  ['3-byte reads (terminators split every way)', () => 3],
  ['random reads up to 70 KiB', () => Math.floor(Math.random() * 70_000)],
  ['the whole script in one read', () => 1 << 30],
] as const) {
  test(`every row reaches one session inside a COPY of its own table: ${name}`, async () => {
    const { stats, merged } = await load(SCRIPT, sizes);
    assert.equal(stats.blocks, 4);
    assert.deepEqual(stats.headers.map((h) => copyTarget(h)), ['public.empty', 'public.big', 'public.new\nline "t" \\! x', 'Odd Schema.Tab"le'], 'every block, the one without rows too');
    assert.equal(stats.loaded, 3, 'the empty table needs no session');
    assert.deepEqual(sorted(merged.get('COPY public.big (id, body, tail, n) FROM stdin;')!), sorted(bigRows));
    assert.deepEqual(sorted(merged.get(NEWLINE_HEADER)!), ['1\ta', '2\tb']);
    assert.deepEqual(sorted(merged.get('COPY "Odd Schema"."Tab""le" (x) FROM stdin;')!), sorted(['\\.x', '\\\\.', '3']));
    assert.equal(merged.has('COPY public.empty (id) FROM stdin;'), false);
  });
}

test('a big table is spread over the sessions', async () => {
  const { sent, stats } = await load(SCRIPT, () => 16 * 1024, 2);
  assert.equal(stats.workers, 2);
  const bigPerSession = sent.map((s) => parseSession(s).rows.get('COPY public.big (id, body, tail, n) FROM stdin;')?.length ?? 0);
  assert.ok(bigPerSession.every((n) => n > 0), `both sessions load rows of public.big: ${bigPerSession.join(', ')}`);
});

test('a script that ends inside a COPY block (a truncated archive) is an error', async () => {
  const cut = SCRIPT.slice(0, SCRIPT.indexOf('\\.\n', SCRIPT.indexOf('COPY public.big')) - 10);
  await assert.rejects(load(cut, () => 4096), (e: unknown) => e instanceof CopyStreamError && /truncated/.test((e as Error).message));
  const midHeader = PRELUDE.join('\n') + '\nCOPY public."unterminated\n';
  await assert.rejects(load(midHeader, () => 7), CopyStreamError);
});

test('anything but settings, comments and COPY blocks between blocks is refused, not passed to psql', async () => {
  for (const line of ['\\! touch pwned', 'DROP TABLE x;', "SET search_path = 'a\\'; \\! id';", 'COPY public.t (a) FROM \'/etc/passwd\';', 'COPY public.t (a) FROM stdin; \\! id']) {
    await assert.rejects(load(`${PRELUDE.join('\n')}\n${line}\n`, () => 100), CopyStreamError, line);
  }
});

test('a session that dies stops the load instead of hanging', async () => {
  let n = 0;
  const start = (): CopyWorker => {
    const stdin = new PassThrough({ highWaterMark: 1024 });
    const dies = n++ === 0;
    // The first session never reads and exits at once, like psql failing on a COPY error.
    const exited = dies ? Promise.reject(new Error('psql exited 3')) : new Promise<void>((r) => stdin.on('end', () => r()));
    exited.catch(() => {});
    if (!dies) stdin.resume();
    return { stdin, exited };
  };
  await assert.rejects(loadCopyStream(chunked(SCRIPT, () => 8192), { parallel: 2, start }), /ended early/);
});

test('COPY headers: quoted identifiers may hold anything, the rest must be what pg_restore writes', () => {
  assert.equal(copyHeaderComplete('COPY public.docs (id, title) FROM stdin;'), true);
  assert.equal(copyHeaderComplete('COPY public."a'), false, 'a quoted name continues on the next line');
  assert.equal(copyHeaderComplete('COPY public."a\n FROM stdin;" (x) FROM stdin;'), true);
  assert.throws(() => copyHeaderComplete('COPY public.t (a) TO stdout;'), CopyStreamError);
  assert.throws(() => copyHeaderComplete('COPY Public.T (a) FROM stdin;'), CopyStreamError, 'upper case is always quoted by pg_dump');
  assert.throws(() => copyHeaderComplete('SELECT 1;'), CopyStreamError);
});

test('the table a COPY header loads, as the manifest names it (schema.table, unquoted)', () => {
  assert.equal(copyTarget('COPY public.docs (id, title) FROM stdin;'), 'public.docs');
  assert.equal(copyTarget('COPY "Odd Schema"."Tab""le" (x) FROM stdin;'), 'Odd Schema.Tab"le');
  assert.equal(copyTarget(`${NEWLINE_HEADER}\n`), 'public.new\nline "t" \\! x');
  assert.equal(copyTarget('COPY "a.b"."c (d" (x) FROM stdin;'), 'a.b.c (d', 'dots and brackets inside quotes are part of the name');
  assert.equal(copyTarget('COPY public.nocols  FROM stdin;'), 'public.nocols', 'a table without columns');
  assert.equal(copyTarget('COPY docs (id) FROM stdin;'), null, 'not schema-qualified: no manifest name');
  assert.equal(copyTarget('COPY a.b.c (id) FROM stdin;'), null);
  assert.equal(copyTarget('COPY public."open (id) FROM stdin;'), null);
});

test("rows per table from psql's COPY tags, paired with the COPYs each session ran; every table of the archive, empty ones too", () => {
  const docs = 'COPY public.docs (id) FROM stdin;\n';
  const tags = 'COPY public.tags (t) FROM stdin;\n';
  const empty = 'COPY public.empty (x) FROM stdin;\n';
  const out = (text: string | null) => () => text;
  assert.deepEqual(
    rowsCopied(
      [docs, tags, empty],
      [
        { headers: [docs, tags], output: out('SET\n set_config \n------------\n \n(1 row)\n\nCOPY 700\nCOPY 5\n') },
        { headers: [docs], output: out('COPY 300\n') },
        { headers: [], output: out('') },
      ],
    ),
    { 'public.docs': 1000, 'public.tags': 5, 'public.empty': 0 },
    'a table split between sessions gets the sum; a block without rows is a table with none',
  );
  assert.deepEqual(rowsCopied([], []), {}, 'an archive without table data');
  assert.equal(rowsCopied([docs, tags], [{ headers: [docs, tags], output: out('COPY 700\n') }]), null, 'a COPY without its tag');
  assert.equal(rowsCopied([docs], [{ headers: [docs], output: out('COPY 1\nCOPY 2\n') }]), null, 'a tag without its COPY');
  assert.equal(rowsCopied([docs], [{ headers: [docs], output: out(null) }]), null, 'output not kept');
  assert.equal(rowsCopied([docs], [{ headers: [tags], output: out('COPY 1\n') }]), null, 'a COPY of a block the stream never began');
  assert.equal(rowsCopied(['COPY docs (id) FROM stdin;\n'], []), null, 'a block naming no schema');
  const proto = 'COPY public."__proto__" (id) FROM stdin;\n';
  assert.deepEqual(rowsCopied([proto], [{ headers: [proto], output: out('COPY 3\n') }]), { 'public.__proto__': 3 });
});
