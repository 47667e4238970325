// FAKE Neo4j (no Neo4j runs here, DESIGN.md §10): the HTTP API's discovery document and transactional endpoint,
// answering node/relationship counts from a store directory that the fake `docker` also reads and writes
// (`neo4j-admin database dump|load` and `compose stop|start neo4j`). While "stopped" it refuses connections'
// worth of answers (503), and the fake docker's dump refuses to run while it is "started", as neo4j-admin does.
import { createServer, type Server } from 'node:http';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

export interface FakeGraph {
  nodes: number;
  relationships: number;
}

export interface Neo4jFake {
  url: string;
  store: string;
  setGraph(db: string, g: FakeGraph): void;
  graph(db: string): FakeGraph | undefined;
  running(): boolean;
  close(): Promise<void>;
}

/** Store layout shared with test/fakes/docker: <store>/<db>.json holds the graph, <store>/STOPPED marks "down". */
export async function startNeo4jFake(opts: { store: string; version?: string; password?: string }): Promise<Neo4jFake> {
  mkdirSync(opts.store, { recursive: true });
  const version = opts.version ?? '5.26.12';
  const graphFile = (db: string) => join(opts.store, `${encodeURIComponent(db)}.json`);
  const read = (db: string): FakeGraph | undefined => (existsSync(graphFile(db)) ? (JSON.parse(readFileSync(graphFile(db), 'utf8')) as FakeGraph) : undefined);
  const running = () => !existsSync(join(opts.store, 'STOPPED'));
  writeFileSync(join(opts.store, 'VERSION'), version);
  const server: Server = createServer((req, res) => {
    if (!running()) {
      res.writeHead(503).end('fake neo4j: stopped');
      return;
    }
    if (opts.password !== undefined && req.headers.authorization !== `Basic ${Buffer.from(`neo4j:${opts.password}`).toString('base64')}`) {
      res.writeHead(401, { 'content-type': 'application/json' }).end(JSON.stringify({ errors: [{ code: 'Neo.ClientError.Security.Unauthorized' }] }));
      return;
    }
    const url = new URL(req.url ?? '/', 'http://x');
    if (req.method === 'GET' && url.pathname === '/') {
      res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ neo4j_version: version, neo4j_edition: 'community', transaction: 'http://localhost:7474/db/{databaseName}/tx' }));
      return;
    }
    const m = /^\/db\/([^/]+)\/tx\/commit$/.exec(url.pathname);
    if (req.method === 'POST' && m) {
      let body = '';
      req.on('data', (c) => (body += c));
      req.on('end', () => {
        const db = decodeURIComponent(m[1]!);
        const g = read(db) ?? { nodes: 0, relationships: 0 };
        const statements = (JSON.parse(body) as { statements: { statement: string }[] }).statements;
        const results = statements.map((s) => ({ columns: ['count'], data: [{ row: [/\[r\]|\(\)-\[/.test(s.statement) ? g.relationships : g.nodes] }] }));
        res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ results, errors: [] }));
      });
      return;
    }
    res.writeHead(404).end();
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const addr = server.address() as { port: number };
  return {
    url: `http://127.0.0.1:${addr.port}`,
    store: opts.store,
    setGraph: (db, g) => writeFileSync(graphFile(db), JSON.stringify(g)),
    graph: read,
    running,
    close: () => new Promise((r) => server.close(() => r())),
  };
}
