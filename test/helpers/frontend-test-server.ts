// A stand-in frontend for tests (node:http): the page at / carries a marker text; every other path is 404.
import { createServer } from 'node:http';

export interface FrontendTestServer {
  port: number;
  url: string;
  close(): Promise<void>;
}

export async function startFrontendTestServer(marker: string): Promise<FrontendTestServer> {
  const server = createServer((req, res) => {
    if ((req.url ?? '/').split('?')[0] === '/') {
      res.writeHead(200, { 'content-type': 'text/html; charset=utf-8' });
      res.end(`<!doctype html><html><head><title>LLC</title></head><body><div id="app">${marker}</div></body></html>`);
      return;
    }
    res.writeHead(404, { 'content-type': 'text/plain' });
    res.end('not found');
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as { port: number }).port;
  return {
    port,
    url: `http://127.0.0.1:${port}`,
    close: async () => {
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}
