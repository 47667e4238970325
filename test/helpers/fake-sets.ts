// Backup sets written directly (valid manifests, real files and checksums) for rotate and verify tests that do
// not need a database behind them.
import { mkdirSync, writeFileSync } from 'node:fs';
import { createHash } from 'node:crypto';
import { join } from 'node:path';
import { setIdFor, type Manifest } from '../../lib/backup-set.ts';

export function writeSet(root: string, time: Date, opts: { payload?: string; sources?: string[] } = {}): string {
  const id = setIdFor(time);
  const dir = join(root, id);
  mkdirSync(join(dir, 'postgres'), { recursive: true });
  const payload = opts.payload ?? `dump of ${id}\n`;
  writeFileSync(join(dir, 'postgres', 'llc.dump'), payload);
  const manifest: Manifest = {
    formatVersion: 1,
    id,
    startedAt: time.toISOString(),
    finishedAt: time.toISOString(),
    host: 'test',
    toolVersion: '0.0.0',
    tags: [],
    sources: Object.fromEntries((opts.sources ?? ['postgres']).map((s) => [s, { serverVersion: '15', durationMs: 1, counts: {} }])),
    artifacts: [{ path: 'postgres/llc.dump', size: Buffer.byteLength(payload), sha256: createHash('sha256').update(payload).digest('hex'), source: 'postgres' }],
  };
  writeFileSync(join(dir, 'manifest.json'), JSON.stringify(manifest));
  return id;
}
