/**
 * The limits that keep `pastiche serve` alive under load and hostile input, with their defaults,
 * checked once when the server starts.
 */
import { expectInteger, expectNumber } from '../util/validate.js';

const MiB = 2 ** 20;
const GiB = 2 ** 30;

export interface ServerLimits {
  /** Largest request body, in bytes (an image for /api/stylize, a file for /api/uploads); 413 past it. */
  readonly maxUploadBytes: number;
  /** Largest decoded image, in pixels, checked from its header before decoding. */
  readonly maxPixels: number;
  /** Memory budget in bytes for one stylize request (decode + network), checked from the header. */
  readonly maxMemory: number;
  /** Stylize requests run at once; more wait in a queue of {@link maxQueued}, then 503. */
  readonly maxConcurrent: number;
  /** Stylize requests that wait for a free slot before the server answers 503. */
  readonly maxQueued: number;
  /** Milliseconds a stylize request may take, upload and wait included, before 503. */
  readonly requestTimeoutMs: number;
  /** Jobs held at once, queued and running; 429 past it. */
  readonly maxJobs: number;
  /** Jobs that run at once; the others wait in order. */
  readonly maxRunningJobs: number;
  /** Milliseconds a finished job (and its result file) is kept before it is removed. */
  readonly jobRetentionMs: number;
  /** Uploads held at once, waiting for a job to use them; 429 past it. */
  readonly maxUploads: number;
  /** Milliseconds an upload no job has used is kept before it is removed. */
  readonly uploadRetentionMs: number;
  /** Seconds a client is told to wait (Retry-After) when the server is full. */
  readonly retryAfterSeconds: number;
}

export const DEFAULT_LIMITS: ServerLimits = {
  maxUploadBytes: 64 * MiB,
  maxPixels: 50_000_000,
  maxMemory: 2 * GiB,
  maxConcurrent: 2,
  maxQueued: 4,
  requestTimeoutMs: 120_000,
  maxJobs: 8,
  maxRunningJobs: 1,
  jobRetentionMs: 3_600_000,
  maxUploads: 16,
  uploadRetentionMs: 900_000,
  retryAfterSeconds: 5,
};

/** `limits` over the defaults, each checked. @throws TypeError / RangeError naming the limit. */
export function serverLimits(limits: Partial<ServerLimits> = {}): ServerLimits {
  const merged = { ...DEFAULT_LIMITS, ...limits };
  expectInteger('maxUploadBytes', merged.maxUploadBytes, 1);
  expectInteger('maxPixels', merged.maxPixels, 1);
  expectNumber('maxMemory', merged.maxMemory, 1024);
  expectInteger('maxConcurrent', merged.maxConcurrent, 1, 1024);
  expectInteger('maxQueued', merged.maxQueued, 0, 100_000);
  expectNumber('requestTimeoutMs', merged.requestTimeoutMs, 1);
  expectInteger('maxJobs', merged.maxJobs, 1, 100_000);
  expectInteger('maxRunningJobs', merged.maxRunningJobs, 1, 1024);
  expectNumber('jobRetentionMs', merged.jobRetentionMs, 0);
  expectInteger('maxUploads', merged.maxUploads, 1, 100_000);
  expectNumber('uploadRetentionMs', merged.uploadRetentionMs, 0);
  expectInteger('retryAfterSeconds', merged.retryAfterSeconds, 1);
  return merged;
}

/** Raised when a bounded queue is full: answered with `status` (503 or 429) and Retry-After. */
export class BusyError extends Error {
  constructor(message: string, readonly status: 503 | 429 = 503) {
    super(message);
    this.name = 'BusyError';
  }
}

/**
 * At most `running` holders at once and `queued` waiting in order; past that {@link acquire} throws
 * BusyError at once, so a flood is refused cheaply instead of piling up.
 */
export class Slots {
  private active = 0;
  private readonly waiting: { grant: () => void }[] = [];

  constructor(private readonly running: number, private readonly queued: number) {}

  /**
   * Resolves to a release function once a slot is free.
   * @throws BusyError when every slot is held and the queue is full; the signal's reason when it fires while waiting.
   */
  acquire(signal?: AbortSignal): Promise<() => void> {
    if (signal?.aborted) return Promise.reject(signal.reason);
    if (this.active < this.running) return Promise.resolve(this.hold());
    if (this.waiting.length >= this.queued) return Promise.reject(new BusyError(`busy: ${this.active} requests running and ${this.waiting.length} waiting`));
    return new Promise((resolve, reject) => {
      const entry = {
        grant: () => {
          signal?.removeEventListener('abort', onAbort);
          resolve(this.hold());
        },
      };
      const onAbort = () => {
        const i = this.waiting.indexOf(entry);
        if (i >= 0) this.waiting.splice(i, 1);
        reject(signal?.reason);
      };
      signal?.addEventListener('abort', onAbort, { once: true });
      this.waiting.push(entry);
    });
  }

  private hold(): () => void {
    this.active++;
    let released = false;
    return () => {
      if (released) return;
      released = true;
      this.active--;
      this.waiting.shift()?.grant();
    };
  }
}
