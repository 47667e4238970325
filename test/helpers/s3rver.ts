// A throwaway s3rver (real S3 API server from npm) on 127.0.0.1 for tests and benchmarks; storage in a temp dir.
// const s3 = await startS3rver(); ... await s3.stop();
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { S3Client } from '@aws-sdk/client-s3';
import { join } from 'node:path';

export interface S3rverHandle {
  endpoint: string;
  /** Random credentials of this server (its built-in S3RVER/S3RVER work too), so leak checks can look for them. */
  accessKey: string;
  secretKey: string;
  /** The temp dir holding the server's storage (removed by stop). */
  dir: string;
  /** The server's data directory (inside dir). */
  dataDir: string;
  pid: number;
  stop(): Promise<void>;
}

const CHILD = join(import.meta.dirname, 's3rver-child.ts');

export async function startS3rver(opts: { dir?: string } = {}): Promise<S3rverHandle> {
  const ownDir = !opts.dir;
  const dir = opts.dir ?? mkdtempSync(join(tmpdir(), 'llc-s3rver-'));
  // Nested, so anything s3rver itself writes beside its data directory still lands inside dir.
  const dataDir = join(dir, 'server', 'data');
  mkdirSync(dataDir, { recursive: true });
  const accessKey = `LLCTEST${randomBytes(6).toString('hex').toUpperCase()}`;
  const secretKey = randomBytes(18).toString('base64url');
  // --openssl-legacy-provider: s3rver's ListObjectsV2 continuation tokens use DES (DESIGN.md §6).
  const child = spawn(process.execPath, ['--openssl-legacy-provider', '--import', 'tsx', CHILD, dataDir], {
    stdio: ['ignore', 'pipe', 'pipe'],
    env: { ...process.env, NODE_NO_WARNINGS: '1', S3RVER_ACCESS_KEY: accessKey, S3RVER_SECRET_KEY: secretKey },
  });
  let stderr = '';
  child.stderr.setEncoding('utf8').on('data', (d: string) => (stderr = (stderr + d).slice(-4000)));
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  const port = await new Promise<number>((resolve, reject) => {
    let out = '';
    const timer = setTimeout(() => reject(new Error(`s3rver did not start in 30 s: ${stderr}`)), 30_000);
    child.stdout.setEncoding('utf8').on('data', (d: string) => {
      out += d;
      const m = /listening (\d+)/.exec(out);
      if (m) {
        clearTimeout(timer);
        resolve(Number(m[1]));
      }
    });
    child.once('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`s3rver exited ${code} before listening: ${stderr}`));
    });
  });
  let stopped = false;
  return {
    endpoint: `http://127.0.0.1:${port}`,
    accessKey,
    secretKey,
    dir,
    dataDir,
    pid: child.pid!,
    async stop() {
      if (stopped) return;
      stopped = true;
      if (child.exitCode === null && child.signalCode === null) {
        child.kill('SIGTERM');
        const timer = setTimeout(() => child.kill('SIGKILL'), 5000);
        await exited;
        clearTimeout(timer);
      }
      if (ownDir) rmSync(dir, { recursive: true, force: true });
    },
  };
}

/** An SDK client for seeding and reading a test server (path-style, checksums only when required: DESIGN.md §6). */
export function s3rverClient(h: Pick<S3rverHandle, 'endpoint' | 'accessKey' | 'secretKey'>): S3Client {
  return new S3Client({
    endpoint: h.endpoint,
    region: 'us-east-1',
    forcePathStyle: true,
    credentials: { accessKeyId: h.accessKey, secretAccessKey: h.secretKey },
    requestChecksumCalculation: 'WHEN_REQUIRED',
    responseChecksumValidation: 'WHEN_REQUIRED',
  });
}
