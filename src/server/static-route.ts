/**
 * The page and its files: `/` (index.html), `/assets/<bundle file>` and `/ort/<version>/<wasm
 * runtime file>`. Only paths in the bundle's list are served (an allow-list: no path from the URL
 * ever reaches the file system), with their media type, an ETag and cache headers: hashed and
 * versioned URLs are immutable, the page itself is revalidated.
 */
import { open } from 'node:fs/promises';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { HttpError, streamFile } from './http.js';
import { buildWebBundle, type WebBundle } from './web-bundle.js';

/** Whether `path` is one the static route answers (the rest of the URL space belongs to the API). */
export function isStaticPath(path: string): boolean {
  return path === '/' || path === '/index.html' || path.startsWith('/assets/') || path.startsWith('/ort/');
}

function matches(header: string | undefined, etag: string): boolean {
  return header !== undefined && header.split(',').map((t) => t.trim().replace(/^W\//, '')).some((t) => t === etag || t === '*');
}

/**
 * The route; the bundle is built on the first request (not at startup, so API-only use and tests
 * pay nothing) and kept. A failed build is answered with 500 and the reason, and tried again on
 * the next request.
 */
export function createStaticRoute(log: (line: string) => void): (req: IncomingMessage, res: ServerResponse, path: string) => Promise<void> {
  let bundle: Promise<WebBundle> | undefined;
  return async (req, res, path) => {
    bundle ??= buildWebBundle();
    let assets: WebBundle['assets'];
    try {
      assets = (await bundle).assets;
    } catch (error) {
      bundle = undefined;
      log(`pastiche serve: ${(error as Error).message}`);
      throw new HttpError(500, (error as Error).message);
    }
    const asset = assets.get(path === '/index.html' ? '/' : path);
    if (asset === undefined) throw new HttpError(404, `no such file: ${path}`);
    const headers = {
      ETag: asset.etag,
      'Cache-Control': asset.immutable ? 'public, max-age=31536000, immutable' : 'no-cache',
      'X-Content-Type-Options': 'nosniff',
    };
    if (matches(req.headers['if-none-match'], asset.etag)) {
      res.writeHead(304, headers);
      res.end();
      return;
    }
    const handle = await open(asset.file, 'r').catch(() => undefined);
    if (handle === undefined) {
      bundle = undefined; // the cache folder was removed under us: rebuild on the next request
      throw new HttpError(404, `no such file: ${path}`);
    }
    const { size } = await handle.stat();
    await streamFile(req, res, handle, { ...headers, 'Content-Type': asset.type, 'Content-Length': size });
  };
}
