/**
 * `pastiche serve`'s HTTP server: routing, the bearer token, per-request timeouts and errors as
 * JSON. The routes live in their own files; the limits in limits.ts.
 */
import { createHash, timingSafeEqual } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { RuntimeOptions } from '../runtime/index.js';
import { messageOf } from '../util/errors.js';
import { HttpError, sendError, sendJson } from './http.js';
import { createInProcessQueue, type JobQueue } from './jobs.js';
import { cancelJobRoute, jobEventsRoute, jobPreviewRoute, jobResultRoute, jobStatusRoute, submitJobRoute, uploadRoute, type JobsContext } from './jobs-route.js';
import { BusyError, Slots, serverLimits, type ServerLimits } from './limits.js';
import { createModelCache, listModelsRoute, modelFileRoute, modelNameFromSegment } from './models-route.js';
import { stylizeRoute, type StylizeContext } from './stylize-route.js';
import { createStaticRoute, isStaticPath } from './static-route.js';
import { createThumbnailRoute } from './thumbnail-route.js';
import { createUploadStore } from './uploads.js';
import { checkOptimizeParams, optimizeJob } from './optimize-job.js';
import { checkVideoParams, videoJob } from './video-job.js';

export interface ServeOptions {
  /** Port to listen on; 0 picks a free one (default 8080). */
  readonly port?: number;
  /** Address to bind (default 127.0.0.1); anything but loopback needs `token`. */
  readonly host?: string;
  /** Bearer token every /api and /models request must carry; required off loopback. */
  readonly token?: string;
  readonly limits?: Partial<ServerLimits>;
  readonly runtime?: RuntimeOptions;
  /** Called with a line for each request that failed on the server's side (default: stderr). */
  readonly log?: (line: string) => void;
}

export interface PasticheServer {
  /** e.g. 'http://127.0.0.1:8080' */
  readonly url: string;
  readonly port: number;
  readonly limits: ServerLimits;
  /** Folder of the server's temporary files (uploads, job results); removed by {@link close}. */
  readonly dir: string;
  /**
   * Stops accepting, aborts the stylize requests in flight, cancels every job and waits for them
   * to stop, then removes the server's temporary files.
   */
  close(): Promise<void>;
}

/** Whether `host` is a loopback address, reachable only from this machine. */
export function isLoopback(host: string): boolean {
  return host === 'localhost' || host === '::1' || host === '[::1]' || /^127\.\d{1,3}\.\d{1,3}\.\d{1,3}$/.test(host);
}

/** Shortest token accepted: guessing one must be out of reach. */
export const MIN_TOKEN_LENGTH = 16;

/**
 * Checks where the server may listen before it starts.
 * @throws RangeError when `host` is not loopback and there is no token, or the token is too short.
 */
export function checkExposure(host: string, token: string | undefined): void {
  if (token !== undefined && token.length < MIN_TOKEN_LENGTH) {
    throw new RangeError(`Expected a token of at least ${MIN_TOKEN_LENGTH} characters for --token but received one of ${token.length}`);
  }
  if (!isLoopback(host) && token === undefined) {
    throw new RangeError(`Expected --token with --host ${host}: a server reachable from other machines needs a bearer token (e.g. --token $(openssl rand -hex 24))`);
  }
}

/**
 * Refuses a browser page from another origin, and — without a token — a Host that is not loopback:
 * a web page the user visits could otherwise reach a loopback server through DNS rebinding, or
 * fire uploads and stylize requests at it that cost CPU.
 */
function checkCaller(req: IncomingMessage, tokenSet: boolean): void {
  const host = req.headers.host ?? '';
  const hostname = host.replace(/:\d+$/, '').replace(/^\[(.*)\]$/, '$1');
  if (!tokenSet && !isLoopback(hostname)) throw new HttpError(403, `refused Host '${host}': this server answers loopback names only (start it with --host and --token to expose it)`);
  const origin = req.headers.origin;
  if (origin !== undefined && origin !== 'null') {
    let originHost: string;
    try {
      originHost = new URL(origin).host;
    } catch {
      throw new HttpError(403, `refused Origin '${origin}'`);
    }
    if (originHost !== host) throw new HttpError(403, `refused a request from the page at ${origin}: only this server's own pages may call it`);
  }
}

function tokenMatches(header: string | undefined, token: string): boolean {
  const given = /^Bearer (.+)$/.exec(header ?? '')?.[1] ?? '';
  // Hashes of equal length, so the comparison takes the same time whatever was sent.
  const digest = (text: string) => createHash('sha256').update(text).digest();
  return timingSafeEqual(digest(given), digest(token));
}

/**
 * Starts the server and resolves once it listens.
 * @example const server = await startServer({ port: 0 }); console.log(server.url); await server.close();
 * @throws RangeError for an exposed host without a token or invalid limits; Node's error when the port is taken.
 */
export async function startServer(options: ServeOptions = {}): Promise<PasticheServer> {
  const host = options.host ?? '127.0.0.1';
  checkExposure(host, options.token);
  const limits = serverLimits(options.limits);
  const log = options.log ?? ((line: string) => process.stderr.write(`${line}\n`));
  const dir = await mkdtemp(join(tmpdir(), 'pastiche-serve-'));
  const openModel = createModelCache(options.runtime ?? {});
  const queue: JobQueue = createInProcessQueue({
    handlers: { video: videoJob(openModel, limits.maxMemory), optimize: optimizeJob(limits, options.runtime ?? {}) },
    dir, maxJobs: limits.maxJobs, maxRunning: limits.maxRunningJobs, retentionMs: limits.jobRetentionMs,
  });
  const uploads = createUploadStore({ dir, maxUploads: limits.maxUploads, maxBytes: limits.maxUploadBytes, retentionMs: limits.uploadRetentionMs });
  const stylize: StylizeContext = { limits, slots: new Slots(limits.maxConcurrent, limits.maxQueued), dir, openModel };
  const jobs: JobsContext = { queue, uploads, kinds: {
    video: { check: checkVideoParams, inputs: ['input'] },
    optimize: { check: checkOptimizeParams, inputs: ['style'], optionalInputs: ['content'] },
  } };
  const staticRoute = createStaticRoute(log);
  const thumbnailRoute = createThumbnailRoute(stylize);
  const stopping = new AbortController();
  const inFlight = new Set<Promise<void>>();

  const route = async (req: IncomingMessage, res: ServerResponse, url: URL, signal: AbortSignal): Promise<void> => {
    const path = url.pathname;
    const method = req.method ?? 'GET';
    const read = method === 'GET' || method === 'HEAD';
    if (isStaticPath(path) && read) return staticRoute(req, res, path);
    if (path === '/api/models' && read) return listModelsRoute(res);
    const thumbnail = /^\/api\/models\/([^/]+)\/thumbnail$/.exec(path);
    if (thumbnail !== null && read) return thumbnailRoute(req, res, modelNameFromSegment(thumbnail[1]), signal);
    if (path.startsWith('/models/') && read) return modelFileRoute(req, res, path.slice('/models/'.length));
    if (path === '/api/stylize' && method === 'POST') return stylizeRoute(req, res, url, stylize, signal);
    if (path === '/api/uploads' && method === 'POST') return uploadRoute(req, res, jobs, signal);
    if (path === '/api/jobs' && method === 'POST') return submitJobRoute(req, res, jobs);
    const job = /^\/api\/jobs\/([0-9a-f-]{36})(\/events|\/result|\/preview)?$/.exec(path);
    if (job !== null) {
      const [, id, tail] = job;
      if (tail === undefined && read) return jobStatusRoute(res, queue, id);
      if (tail === undefined && method === 'DELETE') return cancelJobRoute(res, queue, id);
      if (tail === '/events' && method === 'GET') return jobEventsRoute(req, res, queue, id);
      if (tail === '/result' && read) return jobResultRoute(req, res, queue, id);
      if (tail === '/preview' && read) return jobPreviewRoute(req, res, queue, id);
    }
    const known = ['/api/models', '/api/stylize', '/api/uploads', '/api/jobs'].includes(path) || job !== null || thumbnail !== null || path.startsWith('/models/') || isStaticPath(path);
    throw new HttpError(known ? 405 : 404, known ? `${method} is not allowed on ${path}` : `no such endpoint: ${path}`);
  };

  const handle = async (req: IncomingMessage, res: ServerResponse): Promise<void> => {
    // The client going away, the request's time running out or the server stopping all abort its work.
    const controller = new AbortController();
    const timeout = new HttpError(503, `the request took longer than ${limits.requestTimeoutMs / 1000} s`, { 'Retry-After': String(limits.retryAfterSeconds) });
    const timer = setTimeout(() => controller.abort(timeout), limits.requestTimeoutMs).unref();
    const onClose = () => {
      if (!res.writableFinished) controller.abort(new HttpError(499, 'the client closed the connection'));
    };
    res.on('close', onClose);
    const onStop = () => controller.abort(new HttpError(503, 'the server is shutting down'));
    stopping.signal.addEventListener('abort', onStop, { once: true });
    // A timeout answers at once; the work it aborted may still be finishing and keeps its slot until then.
    controller.signal.addEventListener('abort', () => {
      const reason = controller.signal.reason as HttpError;
      if (reason.status !== 499) sendError(req, res, reason.status, reason.message, { ...reason.headers });
    }, { once: true });
    // Cross-origin isolation on every reply, errors included: the page's WASM threads need
    // SharedArrayBuffer, which the browser grants only to an isolated page.
    res.setHeader('Cross-Origin-Opener-Policy', 'same-origin');
    res.setHeader('Cross-Origin-Embedder-Policy', 'require-corp');
    try {
      const url = new URL(req.url ?? '/', 'http://localhost');
      const guarded = url.pathname.startsWith('/api/') || url.pathname.startsWith('/models/');
      checkCaller(req, options.token !== undefined);
      if (guarded && options.token !== undefined && !tokenMatches(req.headers.authorization, options.token)) {
        throw new HttpError(401, 'missing or wrong bearer token (send Authorization: Bearer <token>)', { 'WWW-Authenticate': 'Bearer' });
      }
      await route(req, res, url, controller.signal);
    } catch (error) {
      if (controller.signal.aborted) return;
      if (error instanceof HttpError) sendError(req, res, error.status, error.message, { ...error.headers });
      else if (error instanceof BusyError) sendError(req, res, error.status, error.message, { 'Retry-After': String(limits.retryAfterSeconds) });
      else {
        log(`pastiche serve: ${req.method} ${req.url}: ${messageOf(error)}`);
        sendError(req, res, 500, 'internal error: the server could not complete the request');
      }
    } finally {
      clearTimeout(timer);
      res.off('close', onClose);
      stopping.signal.removeEventListener('abort', onStop);
    }
  };

  const server: Server = createServer((req, res) => {
    const work = handle(req, res);
    inFlight.add(work);
    void work.finally(() => inFlight.delete(work));
  });
  server.headersTimeout = 20_000;
  server.requestTimeout = 0; // our own timeout answers with a message; uploads may take minutes
  try {
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(options.port ?? 8080, host, () => {
        server.off('error', reject);
        resolve();
      });
    });
  } catch (error) {
    await rm(dir, { recursive: true, force: true });
    throw error;
  }
  const address = server.address();
  const port = typeof address === 'object' && address !== null ? address.port : options.port ?? 8080;
  const shown = host.includes(':') && !host.startsWith('[') ? `[${host}]` : host;
  let closing: Promise<void> | undefined;
  return {
    url: `http://${shown}:${port}`,
    port,
    limits,
    dir,
    close: () => {
      closing ??= (async () => {
        const closed = new Promise<void>((resolve) => server.close(() => resolve()));
        server.closeIdleConnections();
        stopping.abort();
        await Promise.all([queue.close(), uploads.close()]);
        await Promise.allSettled([...inFlight]);
        server.closeAllConnections();
        await closed;
        await rm(dir, { recursive: true, force: true });
      })();
      return closing;
    },
  };
}
