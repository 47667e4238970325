// A real Caddy (Debian's) running compose/Caddyfile on 127.0.0.1 for tests. Caddy instances share listeners across
// processes, so each gets its own admin and site port, a `bind 127.0.0.1`, and HOME/XDG dirs in a scratch dir.
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { freePort } from '../../lib/pg-sandbox.ts';

export const PROD_CADDYFILE = join(import.meta.dirname, '..', '..', 'compose', 'Caddyfile');

function replaceExactly(text: string, from: string, to: string, times: number): string {
  const found = text.split(from).length - 1;
  if (found !== times) throw new Error(`compose/Caddyfile: expected "${from}" ${times} time(s), found ${found}: update test/helpers/caddy.ts`);
  return text.split(from).join(to);
}

/**
 * compose/Caddyfile with only the addresses changed: upstreams, admin port, and a loopback bind. Routes and
 * options stay as in production, so the test exercises the real routing. Throws when the file changed shape.
 */
export function testCaddyfile(prod: string, a: { adminPort: number; frontend: string; mcp: string }): string {
  let text = replaceExactly(prod, 'admin 127.0.0.1:2019', `admin 127.0.0.1:${a.adminPort}`, 1);
  text = replaceExactly(text, '{$LLC_SITE_ADDRESS::80} {', '{$LLC_SITE_ADDRESS::80} {\n\tbind 127.0.0.1', 1);
  text = replaceExactly(text, 'reverse_proxy mcp:8000', `reverse_proxy ${a.mcp}`, 2);
  text = replaceExactly(text, 'reverse_proxy frontend:3000', `reverse_proxy ${a.frontend}`, 1);
  return text;
}

export interface CaddyInstance {
  port: number;
  adminPort: number;
  url: string;
  stop(): Promise<void>;
}

/** Up when the admin API answers and the site port accepts requests (any status: upstreams may be down). */
async function waitForCaddy(adminPort: number, port: number, child: ChildProcess, log: () => string): Promise<void> {
  const until = Date.now() + 15_000;
  while (Date.now() < until) {
    if (child.exitCode !== null) throw new Error(`caddy exited ${child.exitCode}: ${log()}`);
    try {
      const admin = await fetch(`http://127.0.0.1:${adminPort}/config/`);
      await admin.body?.cancel();
      if (admin.ok) {
        const site = await fetch(`http://127.0.0.1:${port}/__caddy_up`);
        await site.body?.cancel();
        return;
      }
    } catch {
      // not listening yet
    }
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(`caddy did not come up: ${log()}`);
}

/** Start caddy with compose/Caddyfile pointed at the given upstreams (host:port); `port` when it must be known early. */
export async function startCaddy(
  upstreams: { frontend: string; mcp: string },
  opts: { port?: number; prodText?: string } = {},
): Promise<CaddyInstance> {
  const prodText = opts.prodText ?? readFileSync(PROD_CADDYFILE, 'utf8');
  const dir = mkdtempSync(join(tmpdir(), 'llc-caddy-'));
  const port = opts.port ?? (await freePort());
  const adminPort = await freePort();
  const file = join(dir, 'Caddyfile');
  writeFileSync(file, testCaddyfile(prodText, { adminPort, ...upstreams }));
  const env = { ...process.env, HOME: dir, XDG_CONFIG_HOME: join(dir, 'config'), XDG_DATA_HOME: join(dir, 'data'), LLC_SITE_ADDRESS: `http://:${port}` };
  const child = spawn('caddy', ['run', '--config', file, '--adapter', 'caddyfile'], { env, stdio: ['ignore', 'ignore', 'pipe'] });
  let log = '';
  child.stderr?.setEncoding('utf8');
  child.stderr?.on('data', (d: string) => {
    log = (log + d).slice(-4000);
  });
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  const stop = async () => {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGTERM');
    await exited;
    rmSync(dir, { recursive: true, force: true });
  };
  try {
    await waitForCaddy(adminPort, port, child, () => log);
  } catch (err) {
    await stop();
    throw err;
  }
  return { port, adminPort, url: `http://127.0.0.1:${port}`, stop };
}
