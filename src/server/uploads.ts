/**
 * Files uploaded for jobs (`POST /api/uploads`): held on disk under a random id until a job takes
 * one (the job then owns and removes it) or until they expire; bounded in number.
 */
import { randomUUID } from 'node:crypto';
import { rm } from 'node:fs/promises';
import type { IncomingMessage } from 'node:http';
import { join } from 'node:path';
import { HttpError, receiveBody } from './http.js';
import { BusyError } from './limits.js';

export interface UploadStore {
  /** Streams a request body to disk; resolves to its id and size. @throws BusyError when full; HttpError 413/400. */
  receive(req: IncomingMessage, signal?: AbortSignal): Promise<{ id: string; bytes: number }>;
  /** Whether an upload with this id is waiting. */
  has(id: unknown): boolean;
  /** Hands an upload to its new owner, which removes it when done. @throws HttpError 400 for an unknown id. */
  take(id: unknown): string;
  /** Removes every upload not yet taken. */
  close(): Promise<void>;
}

export function createUploadStore(options: { dir: string; maxUploads: number; maxBytes: number; retentionMs: number }): UploadStore {
  const uploads = new Map<string, { path: string; expiry: NodeJS.Timeout }>();
  let pending = 0;
  const drop = async (id: string): Promise<void> => {
    const upload = uploads.get(id);
    if (upload === undefined) return;
    uploads.delete(id);
    clearTimeout(upload.expiry);
    await rm(upload.path, { force: true });
  };
  return {
    async receive(req, signal) {
      if (uploads.size + pending >= options.maxUploads) throw new BusyError(`too many uploads waiting for a job (${options.maxUploads})`, 429);
      const id = randomUUID();
      const path = join(options.dir, `upload-${id}`);
      pending++;
      try {
        const bytes = await receiveBody(req, path, options.maxBytes, signal);
        uploads.set(id, { path, expiry: setTimeout(() => void drop(id), options.retentionMs).unref() });
        return { id, bytes };
      } finally {
        pending--;
      }
    },
    has: (id) => typeof id === 'string' && uploads.has(id),
    take(id) {
      const upload = typeof id === 'string' ? uploads.get(id) : undefined;
      if (upload === undefined) throw new HttpError(400, `no upload with the id ${JSON.stringify(id)}: send the file to POST /api/uploads first (uploads expire after ${Math.round(options.retentionMs / 1000)} s)`);
      uploads.delete(id as string);
      clearTimeout(upload.expiry);
      return upload.path;
    },
    async close() {
      await Promise.all([...uploads.keys()].map(drop));
    },
  };
}
