/** Small HTTP pieces every route shares: JSON replies, errors with a status, uploads streamed to disk. */
import { createReadStream, createWriteStream } from 'node:fs';
import type { FileHandle } from 'node:fs/promises';
import { rm } from 'node:fs/promises';
import type { IncomingMessage, ServerResponse } from 'node:http';

/** An error that is the client's to see: its status and message become the JSON reply. */
export class HttpError extends Error {
  constructor(readonly status: number, message: string, readonly headers: Readonly<Record<string, string>> = {}) {
    super(message);
    this.name = 'HttpError';
  }
}

export function sendJson(res: ServerResponse, status: number, body: unknown, headers: Record<string, string> = {}): void {
  const text = JSON.stringify(body);
  res.writeHead(status, { 'Content-Type': 'application/json; charset=utf-8', 'Content-Length': Buffer.byteLength(text), 'Cache-Control': 'no-store', ...headers });
  res.end(text);
}

/**
 * `{ error }` with the status, unless the reply has begun. A request whose body was not read is
 * answered with `Connection: close`, and the rest of its body is read and dropped (up to a bound)
 * so the client sees the reply rather than a reset.
 */
export function sendError(req: IncomingMessage, res: ServerResponse, status: number, message: string, headers: Record<string, string> = {}): void {
  if (res.headersSent || res.destroyed) {
    res.destroy();
    return;
  }
  const unread = !req.complete;
  sendJson(res, status, { error: message }, unread ? { ...headers, Connection: 'close' } : headers);
  if (unread) discard(req);
}

/** Reads and drops what is left of a body; a client that keeps sending past 64 MiB or 10 s is cut off. */
function discard(req: IncomingMessage): void {
  let dropped = 0;
  const timer = setTimeout(() => req.socket.destroy(), 10_000).unref();
  req.on('data', (chunk: Buffer) => {
    dropped += chunk.length;
    if (dropped > 64 * 2 ** 20) req.socket.destroy();
  });
  req.on('end', () => clearTimeout(timer));
  req.on('close', () => clearTimeout(timer));
  req.resume();
}

/**
 * Streams a request body into `path`, refusing with 413 as soon as it passes `maxBytes` (or at once
 * when Content-Length says it will), so an oversized upload is never held whole.
 * @throws HttpError 413 when too large, 400 when the body is empty or the client went away mid-way;
 *   the partial file is removed.
 */
export async function receiveBody(req: IncomingMessage, path: string, maxBytes: number, signal?: AbortSignal): Promise<number> {
  const tooLarge = () => new HttpError(413, `upload is over the limit of ${maxBytes} bytes`);
  const declared = Number(req.headers['content-length']);
  if (Number.isFinite(declared) && declared > maxBytes) throw tooLarge();
  if (signal?.aborted) throw signal.reason;
  const file = createWriteStream(path, { flags: 'wx', mode: 0o600 });
  let received = 0;
  try {
    await new Promise<void>((resolve, reject) => {
      const stop = (error: unknown) => {
        req.off('data', onData).off('end', onEnd).off('close', onClose);
        signal?.removeEventListener('abort', onAbort);
        // Not paused: the error reply reads and drops the rest, so the client sees the reply.
        reject(error);
      };
      const onData = (chunk: Buffer) => {
        received += chunk.length;
        if (received > maxBytes) return stop(tooLarge());
        // Back-pressure: a slow disk pauses the socket instead of filling memory.
        if (!file.write(chunk)) {
          req.pause();
          file.once('drain', () => req.resume());
        }
      };
      const onEnd = () => {
        req.off('close', onClose);
        signal?.removeEventListener('abort', onAbort);
        file.end(() => resolve());
      };
      const onClose = () => stop(new HttpError(400, 'upload ended before its body was complete'));
      const onAbort = () => stop(signal?.reason);
      file.on('error', stop);
      signal?.addEventListener('abort', onAbort, { once: true });
      req.on('data', onData).on('end', onEnd).on('close', onClose);
    });
  } catch (error) {
    file.destroy();
    await rm(path, { force: true });
    throw error;
  }
  if (received === 0) {
    await rm(path, { force: true });
    throw new HttpError(400, 'upload is empty: send the file as the request body');
  }
  return received;
}

/**
 * Replies 200 with the open file `handle` (closed when done): headers as given, the body streamed
 * unless the request is HEAD. A failed read or a client gone ends the response.
 */
export async function streamFile(req: IncomingMessage, res: ServerResponse, handle: FileHandle, headers: Record<string, string | number>): Promise<void> {
  res.writeHead(200, headers);
  if (req.method === 'HEAD') {
    await handle.close();
    res.end();
    return;
  }
  const stream = createReadStream('', { fd: handle, autoClose: true });
  stream.on('error', () => res.destroy());
  res.on('close', () => stream.destroy());
  stream.pipe(res);
}
