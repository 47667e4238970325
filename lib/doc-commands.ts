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
    if (STOP.has(w) || /^[12]?>>?/.test(w) || w.startsWith('#')) break;
    // A quote or backtick inside a bare word closes something around the command (`sh -c '...'`, Markdown code).
    const cut = w.search(/['"`]/);
    if (cut >= 0) {
      if (cut > 0) words.push(w.slice(0, cut));
      break;
    }
    words.push(w);
  }
  return words;
}

export function findCommands(file: string, text: string): DocCommand[] {
  const found: DocCommand[] = [];
  // Join shell line continuations so a command split over lines is read whole.
  const lines = text.replace(/\\\r?\n\s*/g, ' ').split('\n');
  lines.forEach((line, i) => {
    for (const m of line.matchAll(/npx tsx (?:\.\/)?scripts\/([a-z0-9-]+)\.ts\b(.*)/g)) {
      found.push({ file, line: i + 1, script: m[1]!, args: shellWords(m[2] ?? ''), text: m[0] });
    }
    for (const m of line.matchAll(/\bnpm (run )?([a-z][a-z0-9:-]*)\b(?:\s+--\s+(.*))?/g)) {
      if (!m[1] && NPM_BUILTINS.has(m[2]!)) continue;
      found.push({ file, line: i + 1, script: `npm:${m[2]}`, args: m[3] ? shellWords(m[3]) : [], text: m[0] });
    }
  });
  return found;
}
