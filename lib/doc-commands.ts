// Finds the toolbox commands shown in docs, cron files and the README (`npx tsx scripts/<name>.ts ...`,
// `npm run <name>`), so a test can prove each one names a real script with real flags.
export interface DocCommand {
  file: string;
  line: number;
  script: string;
  args: string[];
  text: string;
}

/** npm's own commands; `npm test` and `npm start` run package.json scripts and are checked. */
const NPM_BUILTINS = new Set(['ci', 'install', 'i', 'pack', 'view', 'exec', 'config', 'ls', 'audit', 'init', 'publish', 'version', 'help']);

const STOP = new Set(['&&', '||', '|', ';', '>', '>>', '2>&1', '&', '<', '2>', '1>']);

/** Split a command line roughly like a shell: quotes removed, stops at operators and comments. */
export function shellWords(text: string): string[] {
  const words: string[] = [];
  const re = /"((?:[^"\\]|\\.)*)"|'([^']*)'|(\S+)/g;
  for (const m of text.matchAll(re)) {
    if (m[3] === undefined) {
      words.push(m[1] ?? m[2]!);
      continue;
    }
    const w = m[3];
    // A runbook's placeholder (`--from <id>`) stands for a value, not for a redirection.
    if (/^<[a-z][a-z0-9-]*>$/.test(w)) {
      words.push(w);
      continue;
    }
    if (STOP.has(w) || /^[12]?>>?/.test(w) || w.startsWith('#')) break;
    // A quote or backtick inside a bare word closes something around the command (`sh -c '...'`, Markdown code);
    // an operator inside one ends the command (`--dry-run;`, `--json&&`).
    const cut = w.search(/['"`;&|<>]/);
    if (cut >= 0) {
      if (cut > 0) words.push(w.slice(0, cut));
      break;
    }
    words.push(w);
  }
  return words;
}

/**
 * A toolbox script started as the docs show it: `npx tsx scripts/<name>.ts`, `node --import tsx scripts/<name>.ts`
 * (options before the script allowed), the script path relative, `./`-prefixed or absolute.
 */
const SCRIPT_START = /(?:\bnpx tsx|\bnode(?: --?[a-z][a-z-]*(?:[= ](?!\S*scripts\/)\S+)?)*? --import[= ]tsx)(?: --?[a-z][a-z-]*(?:=\S+)?)* (?:\.\/|[^\s'"`]*\/)?scripts\/([a-z0-9-]+)\.ts\b/g;
const NPM_START = /\bnpm (run )?([a-z][a-z0-9:-]*)\b(?:\s+--\s)?/g;

export function findCommands(file: string, text: string): DocCommand[] {
  const found: DocCommand[] = [];
  // Shell line continuations join a command split over lines; it is reported at the line it starts on.
  const physical = text.split('\n');
  const logical: { line: number; text: string }[] = [];
  for (let i = 0; i < physical.length; i++) {
    const start = i;
    let joined = physical[i]!.replace(/\r$/, '');
    while (/\\$/.test(joined) && i + 1 < physical.length) joined = `${joined.slice(0, -1)} ${physical[++i]!.replace(/\r$/, '').trimStart()}`;
    logical.push({ line: start + 1, text: joined });
  }
  for (const { line, text: l } of logical) {
    // Every command on the line (cron chains several): each one's words run up to the next command's start.
    const starts: { at: number; end: number; script: string; npm?: { run: boolean; args: boolean } }[] = [];
    for (const m of l.matchAll(SCRIPT_START)) starts.push({ at: m.index, end: m.index + m[0].length, script: m[1]! });
    for (const m of l.matchAll(NPM_START)) {
      if (!m[1] && NPM_BUILTINS.has(m[2]!)) continue;
      starts.push({ at: m.index, end: m.index + m[0].length, script: `npm:${m[2]}`, npm: { run: Boolean(m[1]), args: /--\s$/.test(m[0]) } });
    }
    starts.sort((a, b) => a.at - b.at);
    starts.forEach((c, k) => {
      const rest = l.slice(c.end, starts[k + 1]?.at ?? l.length);
      const args = c.npm && !c.npm.args ? [] : shellWords(rest);
      found.push({ file, line, script: c.script, args, text: l.slice(c.at, c.end) + rest.replace(/\s+$/, '') });
    });
  }
  return found;
}
