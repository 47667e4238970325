// A real MCP server for tests (not a fake): the TypeScript SDK's McpServer over Streamable HTTP on node:http, with
// the /healthz and /readyz endpoints of docs/health.md. Dependency checks are passed in (a real PostgreSQL, ...).
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { randomUUID } from 'node:crypto';
import { McpServer } from '@modelcontextprotocol/sdk/server/mcp.js';
import { StreamableHTTPServerTransport } from '@modelcontextprotocol/sdk/server/streamableHttp.js';
import { ListToolsRequestSchema } from '@modelcontextprotocol/sdk/types.js';
import { readinessDocument, readinessHttpStatus, type Check } from '../../lib/readiness.ts';

/** Resolves when the dependency answers (optionally degraded: { warn }), throws when it does not. */
export type DependencyCheck = () => Promise<void | { warn: string }>;

export interface McpTestServerOptions {
  tools: string[];
  checks: Record<string, DependencyCheck>;
  /** Host header values accepted (DNS rebinding protection on): the proxy's host:port must be here. */
  allowedHosts?: string[];
  /** Tool "hold-stream": sends a log notification, then waits for this before it returns (streaming test). */
  hold?: () => Promise<void>;
  checkTimeoutMs?: number;
  /** A misbehaving tools/list: every page points at the same next cursor, or no answer at all. */
  toolsList?: 'cursor-loop' | 'hang';
}

export interface McpTestServer {
  port: number;
  url: string;
  /** Last /readyz document served, with its HTTP status. */
  lastReadiness?: { status: number; body: unknown };
  /** MCP sessions still open (a client that DELETEs its session leaves none). */
  readonly openSessions: number;
  close(): Promise<void>;
}

function json(res: ServerResponse, status: number, body: unknown): void {
  res.writeHead(status, { 'content-type': 'application/json', 'cache-control': 'no-store' });
  res.end(JSON.stringify(body));
}

async function runCheck(check: DependencyCheck, timeoutMs: number): Promise<Check> {
  const t0 = performance.now();
  let timer: NodeJS.Timeout | undefined;
  try {
    const r = await Promise.race([
      check(),
      new Promise<never>((_, reject) => {
        timer = setTimeout(() => reject(new Error(`no answer within ${timeoutMs} ms`)), timeoutMs);
      }),
    ]);
    const latencyMs = Math.round(performance.now() - t0);
    return r && 'warn' in r ? { status: 'warn', latencyMs, error: r.warn } : { status: 'pass', latencyMs, error: null };
  } catch (err) {
    return { status: 'fail', latencyMs: Math.round(performance.now() - t0), error: (err instanceof Error ? err.message : String(err)).split('\n')[0]!.slice(0, 300) || 'failed' };
  } finally {
    clearTimeout(timer);
  }
}

function buildMcp(opts: McpTestServerOptions): McpServer {
  const server = new McpServer({ name: 'llc-mcp-test', version: '0.0.0-test' }, { capabilities: { logging: {} } });
  for (const name of opts.tools) {
    server.registerTool(name, { description: `test tool ${name}` }, async () => ({ content: [{ type: 'text', text: `${name} ok` }] }));
  }
  if (opts.hold) {
    const hold = opts.hold;
    server.registerTool('hold-stream', { description: 'notifies, then waits for the test to release it' }, async (extra) => {
      await extra.sendNotification({ method: 'notifications/message', params: { level: 'info', data: 'hold-stream started' } });
      await hold();
      return { content: [{ type: 'text', text: 'released' }] };
    });
  }
  if (opts.toolsList) {
    // Replaces McpServer's own tools/list handler (registered with the first tool).
    const mode = opts.toolsList;
    server.server.setRequestHandler(ListToolsRequestSchema, async () => {
      if (mode === 'hang') await new Promise(() => {});
      return { tools: [{ name: 'looping', inputSchema: { type: 'object' as const } }], nextCursor: 'same' };
    });
  }
  return server;
}

export async function startMcpTestServer(opts: McpTestServerOptions): Promise<McpTestServer> {
  const sessions = new Map<string, StreamableHTTPServerTransport>();
  const state: { lastReadiness?: { status: number; body: unknown } } = {};

  async function handleMcp(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const sid = req.headers['mcp-session-id'];
    const known = typeof sid === 'string' ? sessions.get(sid) : undefined;
    if (known) return known.handleRequest(req, res);
    if (sid !== undefined) return json(res, 404, { jsonrpc: '2.0', error: { code: -32001, message: 'session not found' }, id: null });
    if (req.method !== 'POST') return json(res, 400, { jsonrpc: '2.0', error: { code: -32000, message: 'no session: initialize first' }, id: null });
    const transport: StreamableHTTPServerTransport = new StreamableHTTPServerTransport({
      sessionIdGenerator: () => randomUUID(),
      enableDnsRebindingProtection: Boolean(opts.allowedHosts),
      allowedHosts: opts.allowedHosts,
      onsessioninitialized: (id) => {
        sessions.set(id, transport);
      },
    });
    transport.onclose = () => {
      if (transport.sessionId) sessions.delete(transport.sessionId);
    };
    await buildMcp(opts).connect(transport);
    await transport.handleRequest(req, res);
  }

  const server: Server = createServer((req, res) => {
    const path = (req.url ?? '/').split('?')[0];
    const done = (p: Promise<void>) =>
      p.catch((err: unknown) => {
        if (!res.headersSent) json(res, 500, { error: String(err) });
        else res.end();
      });
    if (path === '/healthz' && req.method === 'GET') return json(res, 200, { status: 'pass' });
    if (path === '/readyz' && req.method === 'GET') {
      return void done(
        (async () => {
          const names = Object.keys(opts.checks);
          const results = await Promise.all(names.map((n) => runCheck(opts.checks[n]!, opts.checkTimeoutMs ?? 3000)));
          const doc = readinessDocument(Object.fromEntries(names.map((n, i) => [n, results[i]!])), '0.0.0-test');
          const status = readinessHttpStatus(doc.status);
          state.lastReadiness = { status, body: doc };
          json(res, status, doc);
        })(),
      );
    }
    if (path === '/mcp') return void done(handleMcp(req, res));
    json(res, 404, { error: `no route ${path}` });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as { port: number }).port;
  return {
    port,
    url: `http://127.0.0.1:${port}`,
    get lastReadiness() {
      return state.lastReadiness;
    },
    get openSessions() {
      return sessions.size;
    },
    async close() {
      for (const t of sessions.values()) await t.close().catch(() => {});
      sessions.clear();
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}
