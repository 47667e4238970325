// Small filesystem helpers: hashing by streaming, durable writes, atomic replace.
import { createHash } from 'node:crypto';
import { open, rename, writeFile, mkdir } from 'node:fs/promises';
import { dirname, basename, join } from 'node:path';

/**
 * sha256 of a file, read into one reused buffer: a stream would allocate a new chunk per read and a multi-GB
 * dump would leave the heap full of garbage between collections (peak RSS, docs/performance.md).
 */
export async function sha256File(path: string): Promise<string> {
  const hash = createHash('sha256');
  const fh = await open(path, 'r');
  try {
    const buf = Buffer.allocUnsafe(1 << 20);
    for (;;) {
      const { bytesRead } = await fh.read(buf, 0, buf.length, null);
      if (bytesRead === 0) break;
      hash.update(buf.subarray(0, bytesRead));
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
  await mkdir(dirname(path), { recursive: true });
  const tmp = join(dirname(path), `.${basename(path)}.${process.pid}.tmp`);
  await writeFile(tmp, data, { mode });
  await fsyncPath(tmp);
  await rename(tmp, path);
}
