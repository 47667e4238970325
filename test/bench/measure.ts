// Runs one script's main() in this process and records the process's peak RSS (KiB) in $LLC_BENCH_RSS_FILE.
// The children it starts (pg_dump, zstd) are other processes: this measures our own memory.
import { writeFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { pathToFileURL } from 'node:url';

const [script, ...args] = process.argv.slice(2);
if (!script) throw new Error('usage: measure.ts <script.ts> [args...]');
const mod = (await import(pathToFileURL(resolve(script)).href)) as { main(argv: string[]): Promise<number> };
const code = await mod.main(args);
if (process.env.LLC_BENCH_RSS_FILE) writeFileSync(process.env.LLC_BENCH_RSS_FILE, String(process.resourceUsage().maxRSS));
process.exitCode = code;
