/**
 * Long jobs (video stylisation, later optimize and train) behind one small interface,
 * {@link JobQueue}: submit, get, cancel, subscribe. The in-process queue here is the embedded
 * default; a distributed one (workers on other machines) can replace it without touching the
 * handlers, because a job is plain data (its kind, JSON parameters and input files) and a handler
 * only sees that, a folder of its own, an AbortSignal and a progress callback.
 */
import { randomUUID } from 'node:crypto';
import { mkdir, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { AbortError, messageOf } from '../util/errors.js';
import { BusyError } from './limits.js';

/** What a client submits: plain data, so it could travel to another machine. */
export interface JobSpec {
  readonly kind: string;
  readonly params: Readonly<Record<string, unknown>>;
  /** Files the job reads, by role ('input', 'style'…); the queue owns them from now on. */
  readonly inputs: Readonly<Record<string, string>>;
}

/** Progress in one shape for every kind: `done` of `total` units, and a guess at the time left. */
export interface JobProgress {
  readonly done: number;
  readonly total: number | null;
  readonly unit: string;
  readonly etaSeconds: number | null;
}

export type JobState = 'queued' | 'running' | 'done' | 'failed' | 'cancelled';

export interface JobStatus {
  readonly id: string;
  readonly kind: string;
  readonly state: JobState;
  readonly progress: JobProgress | null;
  readonly error?: string;
  /** The latest preview image (optimize): fetch it from /api/jobs/<id>/preview; `version` counts them. */
  readonly preview?: { readonly type: string; readonly bytes: number; readonly version: number };
  /** Where the result can be fetched once `state` is 'done'. */
  readonly result?: { readonly type: string; readonly bytes: number };
  readonly created: string;
  readonly finished?: string;
}

/** A finished job's result file. */
export interface JobResult {
  readonly path: string;
  /** Its media type, e.g. 'video/mp4'. */
  readonly type: string;
  readonly bytes: number;
}

/** Runs one kind of job: writes its result into `dir` and says where; honours `signal`. */
export type JobHandler = (spec: JobSpec, context: {
  readonly dir: string;
  readonly signal: AbortSignal;
  readonly report: (progress: JobProgress) => void;
  /** Publishes an intermediate image written in `dir` (the same path each time is fine). */
  readonly preview: (file: JobResult) => void;
}) => Promise<JobResult>;

export interface JobQueue {
  /** @throws BusyError when the queue is full; RangeError for a kind without a handler. */
  submit(spec: JobSpec): Promise<JobStatus>;
  get(id: string): JobStatus | undefined;
  /** The result file of a finished job, if it is done and not yet removed. */
  result(id: string): JobResult | undefined;
  /** The latest preview image of a running or finished job, if it published one. */
  preview(id: string): JobResult | undefined;
  /** Cancels a queued or running job; resolves once its work has stopped and its files are gone. false: no such job. */
  cancel(id: string): Promise<boolean>;
  /** Calls `listener` on every change of the job (progress, state); returns the unsubscribe function. */
  subscribe(id: string, listener: (status: JobStatus) => void): () => void;
  /** Cancels every job, waits for them to stop and removes their files. */
  close(): Promise<void>;
}

export interface InProcessQueueOptions {
  readonly handlers: Readonly<Record<string, JobHandler>>;
  /** Folder for the jobs' files (one subfolder each). */
  readonly dir: string;
  readonly maxJobs: number;
  readonly maxRunning: number;
  readonly retentionMs: number;
}

interface Entry {
  status: JobStatus;
  readonly spec: JobSpec;
  readonly dir: string;
  readonly controller: AbortController;
  readonly listeners: Set<(status: JobStatus) => void>;
  result?: JobResult;
  preview?: JobResult;
  /** Settles when the work has stopped (or at once for a job that never ran). */
  finished?: Promise<void>;
  expiry?: NodeJS.Timeout;
}

const TERMINAL: readonly JobState[] = ['done', 'failed', 'cancelled'];

/** The embedded job queue: jobs run in this process, at most `maxRunning` at once, in order. */
export function createInProcessQueue(options: InProcessQueueOptions): JobQueue {
  const jobs = new Map<string, Entry>();
  const waiting: Entry[] = [];
  let running = 0;
  let closed = false;

  const update = (entry: Entry, change: Partial<JobStatus>): void => {
    entry.status = { ...entry.status, ...change };
    for (const listener of entry.listeners) listener(entry.status);
    if (TERMINAL.includes(entry.status.state)) {
      entry.listeners.clear();
      entry.expiry = setTimeout(() => void remove(entry), options.retentionMs).unref();
    }
  };

  const remove = async (entry: Entry): Promise<void> => {
    clearTimeout(entry.expiry);
    jobs.delete(entry.status.id);
    await rm(entry.dir, { recursive: true, force: true });
    await Promise.all(Object.values(entry.spec.inputs).map((path) => rm(path, { force: true })));
  };

  const start = (entry: Entry): void => {
    running++;
    update(entry, { state: 'running' });
    const handler = options.handlers[entry.spec.kind];
    entry.finished = (async () => {
      try {
        await mkdir(entry.dir, { recursive: true });
        const result = await handler(entry.spec, {
          dir: entry.dir,
          signal: entry.controller.signal,
          report: (progress) => {
            if (!entry.controller.signal.aborted) update(entry, { progress });
          },
          preview: (file) => {
            if (entry.controller.signal.aborted) return;
            entry.preview = file;
            update(entry, { preview: { type: file.type, bytes: file.bytes, version: (entry.status.preview?.version ?? 0) + 1 } });
          },
        });
        if (entry.controller.signal.aborted) throw new AbortError();
        entry.result = result;
        update(entry, { state: 'done', result: { type: result.type, bytes: result.bytes }, finished: new Date().toISOString() });
      } catch (error) {
        const cancelled = entry.controller.signal.aborted;
        // A cancelled or failed job keeps nothing but its status.
        entry.preview = undefined;
        await rm(entry.dir, { recursive: true, force: true });
        update(entry, cancelled
          ? { state: 'cancelled', finished: new Date().toISOString() }
          : { state: 'failed', error: messageOf(error), finished: new Date().toISOString() });
      } finally {
        await Promise.all(Object.values(entry.spec.inputs).map((path) => rm(path, { force: true })));
        running--;
        next();
      }
    })();
  };

  const next = (): void => {
    while (!closed && running < options.maxRunning && waiting.length > 0) start(waiting.shift()!);
  };

  return {
    async submit(spec) {
      if (closed) throw new BusyError('the server is shutting down');
      if (!(spec.kind in options.handlers)) {
        throw new RangeError(`Expected one of ${Object.keys(options.handlers).map((k) => `'${k}'`).join(', ')} for kind but received '${spec.kind}'`);
      }
      const active = [...jobs.values()].filter((e) => !TERMINAL.includes(e.status.state)).length;
      if (active >= options.maxJobs) throw new BusyError(`the job queue is full (${active} jobs queued or running)`, 429);
      const id = randomUUID();
      const entry: Entry = {
        status: { id, kind: spec.kind, state: 'queued', progress: null, created: new Date().toISOString() },
        spec, dir: join(options.dir, id), controller: new AbortController(), listeners: new Set(),
      };
      jobs.set(id, entry);
      waiting.push(entry);
      next();
      return entry.status;
    },
    get: (id) => jobs.get(id)?.status,
    result: (id) => jobs.get(id)?.result,
    preview: (id) => jobs.get(id)?.preview,
    async cancel(id) {
      const entry = jobs.get(id);
      if (entry === undefined) return false;
      entry.controller.abort();
      const queued = waiting.indexOf(entry);
      if (queued >= 0) {
        waiting.splice(queued, 1);
        await Promise.all(Object.values(entry.spec.inputs).map((path) => rm(path, { force: true })));
        update(entry, { state: 'cancelled', finished: new Date().toISOString() });
      }
      await entry.finished;
      // Cancelling a finished job removes it and its result now rather than at expiry.
      if (entry.status.state === 'done') {
        entry.result = undefined;
        entry.preview = undefined;
        await remove(entry);
      }
      return true;
    },
    subscribe(id, listener) {
      const entry = jobs.get(id);
      if (entry === undefined || TERMINAL.includes(entry.status.state)) return () => undefined;
      entry.listeners.add(listener);
      return () => entry.listeners.delete(listener);
    },
    async close() {
      closed = true;
      const entries = [...jobs.values()];
      waiting.length = 0;
      for (const entry of entries) entry.controller.abort();
      await Promise.all(entries.map((entry) => entry.finished));
      await Promise.all(entries.map(remove));
    },
  };
}
