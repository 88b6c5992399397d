/**
 * The job endpoints: `POST /api/uploads` (a file for a job), `POST /api/jobs` (JSON), `GET
 * /api/jobs/<id>`, `GET /api/jobs/<id>/events` (server-sent events), `GET /api/jobs/<id>/result`,
 * `GET /api/jobs/<id>/preview`, `DELETE /api/jobs/<id>`.
 */
import { open, rm } from 'node:fs/promises';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { messageOf } from '../util/errors.js';
import { HttpError, sendJson, streamFile } from './http.js';
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

/** What `POST /api/jobs` needs to know about one kind of job. */
export interface JobKind {
  /** Checks the parameters before the job is queued (throws TypeError/RangeError/HttpError). */
  readonly check: (params: Record<string, unknown>) => unknown;
  /** JSON fields that name uploads (`POST /api/uploads` ids), required and optional. */
  readonly inputs: readonly string[];
  readonly optionalInputs?: readonly string[];
}

export interface JobsContext {
  readonly queue: JobQueue;
  readonly uploads: UploadStore;
  readonly kinds: Readonly<Record<string, JobKind>>;
}

export async function uploadRoute(req: IncomingMessage, res: ServerResponse, context: JobsContext, signal: AbortSignal): Promise<void> {
  const { id, bytes } = await context.uploads.receive(req, signal);
  sendJson(res, 201, { id, bytes });
}

export async function submitJobRoute(req: IncomingMessage, res: ServerResponse, context: JobsContext): Promise<void> {
  const body = await readJson(req);
  const kinds = Object.keys(context.kinds);
  if (typeof body.kind !== 'string' || !kinds.includes(body.kind)) {
    throw new HttpError(400, `Expected one of ${kinds.map((k) => `'${k}'`).join(', ')} for kind but received ${JSON.stringify(body.kind ?? null)}`);
  }
  const kind = context.kinds[body.kind];
  try {
    kind.check(body);
  } catch (error) {
    throw error instanceof HttpError ? error : new HttpError(400, messageOf(error));
  }
  const roles = [...kind.inputs, ...(kind.optionalInputs ?? []).filter((role) => body[role] !== undefined)];
  // Every id is checked before any is taken, so a refusal leaves the uploads for a corrected request.
  for (const role of roles) {
    if (!context.uploads.has(body[role])) context.uploads.take(body[role]);
  }
  const inputs = Object.fromEntries(roles.map((role) => [role, context.uploads.take(body[role])]));
  const status = await context.queue.submit({ kind: body.kind, params: body, inputs }).catch(async (error: unknown) => {
    await Promise.all(Object.values(inputs).map((path) => rm(path, { force: true })));
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

const EXTENSIONS: Readonly<Record<string, string>> = { 'video/mp4': '.mp4', 'image/png': '.png' };

/** Streams a job's file; its size is read from the open file, which a newer preview may replace by rename. */
async function sendFile(req: IncomingMessage, res: ServerResponse, path: string, type: string, name: string): Promise<void> {
  const handle = await open(path, 'r').catch(() => undefined);
  if (handle === undefined) throw new HttpError(404, 'the file is gone: the job was removed');
  const { size } = await handle.stat();
  await streamFile(req, res, handle, { 'Content-Type': type, 'Content-Length': size, 'Cache-Control': 'no-store', 'Content-Disposition': `attachment; filename="${name}${EXTENSIONS[type] ?? ''}"` });
}

export async function jobResultRoute(req: IncomingMessage, res: ServerResponse, queue: JobQueue, id: string): Promise<void> {
  const status = found(queue, id);
  const result = queue.result(id);
  if (result === undefined) throw new HttpError(409, `job '${id}' has no result: it is ${status.state}`);
  await sendFile(req, res, result.path, result.type, `${status.kind}-${id}`);
}

export async function jobPreviewRoute(req: IncomingMessage, res: ServerResponse, queue: JobQueue, id: string): Promise<void> {
  const status = found(queue, id);
  const preview = queue.preview(id);
  if (preview === undefined) throw new HttpError(409, `job '${id}' has no preview image (yet)`);
  await sendFile(req, res, preview.path, preview.type, `${status.kind}-${id}-preview`);
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
