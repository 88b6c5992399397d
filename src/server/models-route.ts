/**
 * The model store over HTTP: `GET /api/models` lists it, `GET /models/<name>.onnx` serves a file
 * (for the browser's onnxruntime-web) with an ETag so a page revalidates instead of downloading
 * again. Names pass checkModelName, so no path outside the store can be asked for.
 */
import { open } from 'node:fs/promises';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { openStyleModel, type StyleModel } from '../style/model.js';
import type { RuntimeOptions } from '../runtime/index.js';
import { messageOf } from '../util/errors.js';
import { checkModelName, findModelFile, listModels } from '../weights/store.js';
import { HttpError, sendJson, streamFile } from './http.js';

export async function listModelsRoute(res: ServerResponse): Promise<void> {
  const models = (await listModels()).filter((m) => m.architecture !== 'unreadable');
  sendJson(res, 200, { models: models.map(({ name, architecture, description, bytes, builtin }) => ({ name, architecture, description, bytes, builtin, url: `/models/${name}.onnx` })) });
}

/**
 * A store name from a URL path segment ('la_muse.onnx', percent-encoded or not).
 * @throws HttpError 400 for anything that is not a plain model name (slashes, '..', absolute paths).
 */
export function modelNameFromSegment(segment: string, suffix = ''): string {
  let name: string;
  try {
    name = decodeURIComponent(segment);
  } catch {
    throw new HttpError(400, 'malformed percent-encoding in the model name');
  }
  if (suffix !== '') {
    if (!name.endsWith(suffix)) throw new HttpError(404, `no such file: model files end in ${suffix}`);
    name = name.slice(0, -suffix.length);
  }
  return checkName(name);
}

/** @throws HttpError 400 with checkModelName's message. */
export function checkName(name: string): string {
  try {
    return checkModelName(name);
  } catch (error) {
    throw new HttpError(400, messageOf(error));
  }
}

/** Opens a store model's file, refusing anything but a regular file; undefined when there is none. */
async function openModelFile(name: string) {
  const path = await findModelFile(name);
  if (path === undefined) return undefined;
  const handle = await open(path, 'r').catch(() => undefined);
  if (handle === undefined) return undefined;
  const info = await handle.stat();
  if (!info.isFile()) {
    await handle.close();
    return undefined;
  }
  return { handle, info };
}

export async function modelFileRoute(req: IncomingMessage, res: ServerResponse, segment: string): Promise<void> {
  const name = modelNameFromSegment(segment, '.onnx');
  const file = await openModelFile(name);
  if (file === undefined) throw new HttpError(404, `no model named '${name}' in the store`);
  const { handle, info } = file;
  // Size and modification time: a model replaced with --force gets a new tag.
  const etag = `"${info.size.toString(16)}-${Math.floor(info.mtimeMs).toString(16)}"`;
  const headers = { ETag: etag, 'Cache-Control': 'private, no-cache', 'Last-Modified': info.mtime.toUTCString() };
  const match = req.headers['if-none-match'];
  if (match !== undefined && match.split(',').map((t) => t.trim().replace(/^W\//, '')).some((t) => t === etag || t === '*')) {
    await handle.close();
    res.writeHead(304, headers);
    res.end();
    return;
  }
  await streamFile(req, res, handle, { ...headers, 'Content-Type': 'application/octet-stream', 'Content-Length': info.size });
}

/**
 * Store models opened once and kept (through the model door and its trial run), reopened when the
 * file changes; at most `capacity`, the least recently used dropped first.
 */
export function createModelCache(runtime: RuntimeOptions, capacity = 8) {
  const cache = new Map<string, { key: string; model: Promise<StyleModel> }>();
  return async (name: string): Promise<StyleModel> => {
    const file = await openModelFile(name);
    if (file === undefined) throw new HttpError(404, `no model named '${name}' in the store`);
    await file.handle.close();
    const key = `${file.info.size}-${file.info.mtimeMs}`;
    let entry = cache.get(name);
    if (entry?.key !== key) {
      const fresh = { key, model: openStyleModel(name, runtime) };
      fresh.model.catch(() => {
        if (cache.get(name) === fresh) cache.delete(name);
      });
      entry = fresh;
    }
    cache.delete(name);
    cache.set(name, entry);
    if (cache.size > capacity) cache.delete(cache.keys().next().value!);
    return entry.model;
  };
}
