/**
 * The job endpoints: `POST /api/uploads` (a file for a job), `POST /api/jobs` (JSON), `GET
 * /api/jobs/<id>`, `GET /api/jobs/<id>/events` (server-sent events), `GET /api/jobs/<id>/result`,
 * `DELETE /api/jobs/<id>`.
 */
import { createReadStream } from 'node:fs';
import { rm } from 'node:fs/promises';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { messageOf } from '../util/errors.js';
import { HttpError, sendJson } from './http.js';
import type { JobQueue, JobStatus } from './jobs.js';
import type { UploadStore } from './uploads.js';

/** Largest JSON body `POST /api/jobs` reads. */
const MAX_JSON_BYTES = 64 * 1024;

async function readJson(req: IncomingMessage): Promise<Record<string, unknown>> {
  const type = req.headers['content-type'] ?? '';
  if (!/^application\/json\b/i.test(type)) throw new HttpError(415, `expected Content-Type: application/json but received '${type}'`);
  const chunks: Buffer[] = [];
  let length = 0;
  for await (const chunk of req as AsyncIterable<Buffer>) {
    length += chunk.length;
    if (length > MAX_JSON_BYTES) throw new HttpError(413, `JSON body is over the limit of ${MAX_JSON_BYTES} bytes`);
    chunks.push(chunk);
  }
  let body: unknown;
  try {
    body = JSON.parse(Buffer.concat(chunks).toString('utf8'));
  } catch (error) {
    throw new HttpError(400, `malformed JSON (${messageOf(error)})`);
  }
  if (typeof body !== 'object' || body === null || Array.isArray(body)) throw new HttpError(400, 'expected a JSON object such as {"kind": "video", "input": "<upload id>", "model": "<name>"}');
  return body as Record<string, unknown>;
}

export interface JobsContext {
  readonly queue: JobQueue;
  readonly uploads: UploadStore;
  /** Checks a kind's parameters before it is queued (throws TypeError/RangeError/HttpError). */
  readonly checkParams: Readonly<Record<string, (params: Record<string, unknown>) => unknown>>;
}

export async function uploadRoute(req: IncomingMessage, res: ServerResponse, context: JobsContext, signal: AbortSignal): Promise<void> {
  const { id, bytes } = await context.uploads.receive(req, signal);
  sendJson(res, 201, { id, bytes });
}

export async function submitJobRoute(req: IncomingMessage, res: ServerResponse, context: JobsContext): Promise<void> {
  const body = await readJson(req);
  const kinds = Object.keys(context.checkParams);
  if (typeof body.kind !== 'string' || !kinds.includes(body.kind)) {
    throw new HttpError(400, `Expected one of ${kinds.map((k) => `'${k}'`).join(', ')} for kind but received ${JSON.stringify(body.kind ?? null)}`);
  }
  try {
    context.checkParams[body.kind](body);
  } catch (error) {
    throw error instanceof HttpError ? error : new HttpError(400, messageOf(error));
  }
  const input = context.uploads.take(body.input);
  const status = await context.queue.submit({ kind: body.kind, params: body, inputs: { input } }).catch(async (error: unknown) => {
    await rm(input, { force: true });
    throw error;
  });
  sendJson(res, 202, status, { Location: `/api/jobs/${status.id}` });
}

function found(queue: JobQueue, id: string): JobStatus {
  const status = queue.get(id);
  if (status === undefined) throw new HttpError(404, `no job with the id '${id}' (finished jobs are removed after a while)`);
  return status;
}

export function jobStatusRoute(res: ServerResponse, queue: JobQueue, id: string): void {
  sendJson(res, 200, found(queue, id));
}

export async function cancelJobRoute(res: ServerResponse, queue: JobQueue, id: string): Promise<void> {
  found(queue, id);
  await queue.cancel(id);
  sendJson(res, 200, queue.get(id) ?? { id, state: 'removed' });
}

export function jobResultRoute(req: IncomingMessage, res: ServerResponse, queue: JobQueue, id: string): void {
  const status = found(queue, id);
  const result = queue.result(id);
  if (result === undefined) throw new HttpError(409, `job '${id}' has no result: it is ${status.state}`);
  res.writeHead(200, { 'Content-Type': result.type, 'Content-Length': result.bytes, 'Cache-Control': 'no-store', 'Content-Disposition': `attachment; filename="${status.kind}-${id}${result.type === 'video/mp4' ? '.mp4' : ''}"` });
  if (req.method === 'HEAD') {
    res.end();
    return;
  }
  const stream = createReadStream(result.path);
  stream.on('error', () => res.destroy());
  res.on('close', () => stream.destroy());
  stream.pipe(res);
}

/**
 * Server-sent events: a `status` event at once and on every change (progress, state), until the
 * job ends; a comment every 15 s keeps proxies from closing a quiet stream.
 */
export function jobEventsRoute(req: IncomingMessage, res: ServerResponse, queue: JobQueue, id: string): void {
  const first = found(queue, id);
  res.writeHead(200, { 'Content-Type': 'text/event-stream; charset=utf-8', 'Cache-Control': 'no-store', Connection: 'keep-alive', 'X-Accel-Buffering': 'no' });
  const send = (status: JobStatus): void => {
    res.write(`event: ${status.state === 'queued' || status.state === 'running' ? 'progress' : 'end'}\ndata: ${JSON.stringify(status)}\n\n`);
  };
  send(first);
  if (['done', 'failed', 'cancelled'].includes(first.state)) {
    res.end();
    return;
  }
  const heartbeat = setInterval(() => res.write(': keep-alive\n\n'), 15_000).unref();
  const unsubscribe = queue.subscribe(id, (status) => {
    send(status);
    if (['done', 'failed', 'cancelled'].includes(status.state)) stop();
  });
  const stop = (): void => {
    clearInterval(heartbeat);
    unsubscribe();
    res.end();
  };
  req.on('close', stop);
}
