// s3rver (npm) in its own process for tests, started by test/helpers/s3rver.ts: prints "listening <port>" once ready.
// Usage: node --openssl-legacy-provider --import tsx test/helpers/s3rver-child.ts <dataDir> [port]
import { createRequire } from 'node:module';

const require = createRequire(import.meta.url);

interface StoreClass {
  encodeKeyPath(key: string): string;
  decodeKeyPath(path: string): string;
}
interface S3rverServer {
  run(): Promise<{ address: string; port: number }>;
  close(): Promise<void>;
}

const FilesystemStore = require('s3rver/lib/stores/filesystem.js') as StoreClass;
const { DUMMY_ACCOUNT } = require('s3rver/lib/models/account.js') as { DUMMY_ACCOUNT: { createKeyPair(id: string, secret: string): void } };
const S3rver = require('s3rver') as new (opts: Record<string, unknown>) => S3rverServer;

// s3rver joins keys into file paths (DESIGN.md §6): "../x" lands outside the bucket directory, where its own
// listing never finds it again. Escape "&" and the dot segments in its file names so such keys stay inside the
// bucket and list back byte-exact. Only the server's private storage layout changes, never what goes over the wire.
const encodeSegment = (s: string) => (s === '.' ? '&2e' : s === '..' ? '&2e&2e' : s.replace(/&/g, '&26'));
const decodeSegment = (s: string) => s.replace(/&([0-9a-f]{2})/g, (_, hex: string) => String.fromCharCode(parseInt(hex, 16)));
FilesystemStore.encodeKeyPath = (key) => key.split('/').map(encodeSegment).join('/');
FilesystemStore.decodeKeyPath = (path) => path.split('/').map(decodeSegment).join('/');

// Credentials of the run come by environment, never argv; S3RVER/S3RVER keeps working too.
if (process.env.S3RVER_ACCESS_KEY && process.env.S3RVER_SECRET_KEY) DUMMY_ACCOUNT.createKeyPair(process.env.S3RVER_ACCESS_KEY, process.env.S3RVER_SECRET_KEY);

const [directory, port = '0'] = process.argv.slice(2);
if (!directory) throw new Error('usage: s3rver-child.ts <dataDir> [port]');
const server = new S3rver({ directory, address: '127.0.0.1', port: Number(port), silent: true, vhostBuckets: false });
const addr = await server.run();
process.stdout.write(`listening ${addr.port}\n`);
const stop = () => void server.close().finally(() => process.exit(0));
process.once('SIGTERM', stop);
process.once('SIGINT', stop);
