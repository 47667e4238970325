// FAKE Qdrant and Neo4j health endpoints (neither can run here, DESIGN.md §10): only what smoke and the MCP test
// server read. Qdrant: GET /readyz -> 200 "all shards are ready" (no api key, as the real one). Neo4j: GET / ->
// the HTTP discovery document (neo4j_version, neo4j_edition, ...), as Neo4j 5 serves it on port 7474.
import { createServer } from 'node:http';

export interface StoreHealthFake {
  qdrantUrl: string;
  neo4jUrl: string;
  close(): Promise<void>;
}

export async function startStoreHealthFake(opts: { neo4jVersion?: string } = {}): Promise<StoreHealthFake> {
  const servers = [
    createServer((req, res) => {
      if (req.method === 'GET' && req.url === '/readyz') {
        res.writeHead(200, { 'content-type': 'text/plain; charset=utf-8' });
        return res.end('all shards are ready');
      }
      res.writeHead(404).end();
    }),
    createServer((req, res) => {
      if (req.method === 'GET' && req.url === '/') {
        res.writeHead(200, { 'content-type': 'application/json' });
        return res.end(
          JSON.stringify({
            bolt_routing: 'neo4j://localhost:7687',
            transaction: 'http://localhost:7474/db/{databaseName}/tx',
            bolt_direct: 'bolt://localhost:7687',
            neo4j_version: opts.neo4jVersion ?? '5.26.12',
            neo4j_edition: 'community',
          }),
        );
      }
      res.writeHead(404).end();
    }),
  ];
  const ports = await Promise.all(
    servers.map((s) => new Promise<number>((resolve) => s.listen(0, '127.0.0.1', () => resolve((s.address() as { port: number }).port)))),
  );
  return {
    qdrantUrl: `http://127.0.0.1:${ports[0]}`,
    neo4jUrl: `http://127.0.0.1:${ports[1]}`,
    close: async () => {
      await Promise.all(servers.map((s) => new Promise<void>((resolve) => (s.closeAllConnections(), s.close(() => resolve())))));
    },
  };
}
