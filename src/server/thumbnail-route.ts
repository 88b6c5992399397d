/**
 * `GET /api/models/<name>/thumbnail`: a small PNG of a drawn scene stylised by the model, for the
 * page's gallery. Made on first request in one of the stylize slots, then kept in memory per model
 * file (a replaced model gets a new one).
 */
import { readFile, rm, stat } from 'node:fs/promises';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { randomUUID } from 'node:crypto';
import { join } from 'node:path';
import { writeImage } from '../image/codec.js';
import type { RgbImage } from '../image/types.js';
import { stylizeImage } from '../style/transfer.js';
import { findModelFile } from '../weights/store.js';
import { HttpError } from './http.js';
import type { StylizeContext } from './stylize-route.js';

export const THUMBNAIL_WIDTH = 128;
export const THUMBNAIL_HEIGHT = 96;

/**
 * The scene every thumbnail shows (drawn, so the project ships no photo): a sky, a sun, hills, a
 * house — edges, flat areas and gradients, where styles differ most visibly.
 */
export function thumbnailScene(width = THUMBNAIL_WIDTH, height = THUMBNAIL_HEIGHT): RgbImage {
  const n = width * height;
  const data = new Float32Array(3 * n);
  for (let y = 0; y < height; y++) {
    for (let x = 0; x < width; x++) {
      const u = x / width;
      const v = y / height;
      let rgb = [90 + 110 * v, 150 + 70 * v, 235]; // sky, lighter towards the horizon
      if ((u - 0.78) ** 2 + ((v - 0.22) * 0.75) ** 2 < 0.01) rgb = [250, 215, 70]; // sun
      const hill = 0.62 + 0.08 * Math.sin(u * 7) + 0.04 * Math.sin(u * 19);
      if (v > hill) rgb = [60 + 60 * (v - hill), 140 - 50 * (v - hill), 55]; // grass
      if (u > 0.2 && u < 0.42 && v > 0.5 && v < 0.78) rgb = [205, 180, 150]; // wall
      if (u > 0.17 && u < 0.45 && v > 0.32 && v <= 0.5 && Math.abs(u - 0.31) < (v - 0.32) * 0.78) rgb = [170, 45, 40]; // roof
      if (u > 0.28 && u < 0.34 && v > 0.62 && v < 0.78) rgb = [90, 55, 35]; // door
      data[y * width + x] = rgb[0];
      data[n + y * width + x] = rgb[1];
      data[2 * n + y * width + x] = rgb[2];
    }
  }
  return { data, width, height };
}

const MAX_KEPT = 64;

/** The route; thumbnails are kept per model file (name, size, modification time). */
export function createThumbnailRoute(context: StylizeContext): (req: IncomingMessage, res: ServerResponse, name: string, signal: AbortSignal) => Promise<void> {
  const kept = new Map<string, Promise<Buffer>>();
  const make = async (name: string, signal: AbortSignal): Promise<Buffer> => {
    const style = await context.openModel(name);
    const release = await context.slots.acquire(signal);
    const path = join(context.dir, `thumbnail-${randomUUID()}.png`);
    try {
      await writeImage(path, await stylizeImage(style, thumbnailScene(), { signal }));
      return await readFile(path);
    } finally {
      release();
      await rm(path, { force: true });
    }
  };
  return async (req, res, name, signal) => {
    const path = await findModelFile(name);
    const info = path === undefined ? undefined : await stat(path).catch(() => undefined);
    if (info === undefined || !info.isFile()) throw new HttpError(404, `no model named '${name}' in the store`);
    const key = `${name}-${info.size}-${info.mtimeMs}`;
    const etag = `"thumb-${info.size.toString(16)}-${Math.floor(info.mtimeMs).toString(16)}"`;
    const headers = { ETag: etag, 'Cache-Control': 'private, no-cache' };
    if (req.headers['if-none-match'] === etag) {
      res.writeHead(304, headers);
      res.end();
      return;
    }
    let png = kept.get(key);
    if (png === undefined) {
      png = make(name, signal);
      kept.set(key, png);
      png.catch(() => kept.delete(key));
      if (kept.size > MAX_KEPT) kept.delete(kept.keys().next().value!);
    }
    const bytes = await png;
    res.writeHead(200, { ...headers, 'Content-Type': 'image/png', 'Content-Length': bytes.length });
    res.end(req.method === 'HEAD' ? undefined : bytes);
  };
}
