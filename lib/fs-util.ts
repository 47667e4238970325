// Small filesystem helpers: hashing by streaming, durable writes, atomic replace.
import { createHash } from 'node:crypto';
import { open, rename, writeFile } from 'node:fs/promises';
import { dirname, basename, join } from 'node:path';
import { mkdirSync, statSync } from 'node:fs';

/**
 * sha256 of a file, read into two reused buffers: a stream would allocate a new chunk per read and a multi-GB
 * dump would leave the heap full of garbage between collections (peak RSS, docs/performance.md).
 */
export async function sha256File(path: string): Promise<string> {
  const hash = createHash('sha256');
  const fh = await open(path, 'r');
  try {
    // Two buffers: the next read runs (in the thread pool) while this one is hashed.
    const bufs = [Buffer.allocUnsafe(1 << 20), Buffer.allocUnsafe(1 << 20)];
    let i = 0;
    let reading = fh.read(bufs[0]!, 0, 1 << 20, null);
    for (;;) {
      const { bytesRead, buffer } = await reading;
      if (bytesRead === 0) break;
      i ^= 1;
      reading = fh.read(bufs[i]!, 0, 1 << 20, null);
      hash.update(buffer.subarray(0, bytesRead));
    }
  } finally {
    await fh.close();
  }
  return hash.digest('hex');
}

/** fsync a file or directory so a rename that follows it is durable across a crash. */
export async function fsyncPath(path: string): Promise<void> {
  const fh = await open(path, 'r');
  try {
    await fh.sync();
  } finally {
    await fh.close();
  }
}

/** Write a file through a temp name in the same directory and rename it into place (readers never see half a file). */
export async function writeFileAtomic(path: string, data: string | Buffer, mode = 0o600): Promise<void> {
  ensureDirSync(dirname(path), 0o755);
  const tmp = join(dirname(path), `.${basename(path)}.${process.pid}.tmp`);
  await writeFile(tmp, data, { mode });
  await fsyncPath(tmp);
  await rename(tmp, path);
}

/**
 * mkdir -p, one level at a time. Node's recursive mkdir spins forever on some paths it cannot create (seen with
 * /proc/<name>); creating each missing level ourselves turns that into a plain error naming the path.
 */
export function ensureDirSync(path: string, mode = 0o700): void {
  try {
    if (statSync(path).isDirectory()) return;
    throw new Error(`${path} exists and is not a directory`);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
  }
  const parent = dirname(path);
  if (parent !== path) ensureDirSync(parent, mode);
  try {
    mkdirSync(path, { mode });
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw new Error(`cannot create directory ${path}: ${(err as Error).message}`);
  }
}
