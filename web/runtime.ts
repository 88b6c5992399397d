/**
 * The page's side of the inference workers (worker.ts): one worker per backend, started on first
 * use, style networks opened in them, frames sent there and back as transferred buffers (no copies,
 * no allocation per frame). A backend's worker can be stopped outright, runs in flight and all,
 * which is how a WebGPU trial that takes too long is abandoned.
 */
import type { GpuInfo, Reply, Request } from './worker.js';

export type { GpuInfo };

export type Backend = 'wasm' | 'webgpu';

/** Distributes Omit over a union, so each request keeps its own fields. */
type WithoutId<T> = T extends unknown ? Omit<T, 'id'> : never;

type Waiting = { resolve: (reply: Reply & { ok: true }) => void; reject: (error: Error & { reply?: Reply }) => void };

/** One worker and its requests waiting for replies. */
class WorkerClient {
  private readonly worker: Worker;
  private readonly pending = new Map<number, Waiting>();
  private nextId = 1;
  private failure: string | undefined;

  constructor(url: string, name: string, private readonly onDead: () => void) {
    this.worker = new Worker(url, { type: 'module', name });
    this.worker.onmessage = (event: MessageEvent<Reply>) => {
      const reply = event.data;
      const waiting = this.pending.get(reply.id);
      this.pending.delete(reply.id);
      if (reply.ok) waiting?.resolve(reply);
      else waiting?.reject(Object.assign(new Error(reply.error), { reply }));
    };
    this.worker.onerror = (event) => this.stop(`the inference worker failed: ${event.message || 'it could not be loaded'}`);
  }

  ask(request: WithoutId<Request>, transfer: Transferable[] = []): Promise<Reply & { ok: true }> {
    if (this.failure !== undefined) return Promise.reject(new Error(this.failure));
    const id = this.nextId++;
    return new Promise((resolve, reject) => {
      this.pending.set(id, { resolve, reject });
      this.worker.postMessage({ ...request, id }, transfer);
    });
  }

  /** Terminates the worker; what waits on it fails with `reason`. */
  stop(reason: string): void {
    if (this.failure !== undefined) return;
    this.failure = reason;
    this.worker.terminate();
    for (const { reject } of this.pending.values()) reject(new Error(reason));
    this.pending.clear();
    this.onDead();
  }
}

const workers = new Map<Backend, WorkerClient>();

function workerFor(backend: Backend): WorkerClient {
  let client = workers.get(backend);
  if (client === undefined) {
    const url = document.querySelector<HTMLMetaElement>(`meta[name="pastiche-worker-${backend}"]`)?.content;
    if (url === undefined) throw new Error(`index.html names no ${backend} inference worker`);
    client = new WorkerClient(url, `pastiche-${backend}`, () => {
      if (workers.get(backend) === client) workers.delete(backend);
    });
    workers.set(backend, client);
  }
  return client;
}

/** WASM threads: they need SharedArrayBuffer, granted only to a cross-origin isolated page (the server sends COOP/COEP). */
function threads(): number {
  return self.crossOriginIsolated ? Math.max(1, Math.min(4, navigator.hardwareConcurrency || 1)) : 1;
}

/** What the page has: the WebGPU adapter (null: none) and the WASM thread count. */
export interface Environment {
  readonly webgpu: GpuInfo | null;
  readonly threads: number;
}

const configured = new WeakMap<WorkerClient, Promise<Environment>>();

/** Sets up a worker's onnxruntime once and learns whether it sees a WebGPU adapter. */
function configure(client: WorkerClient): Promise<Environment> {
  let done = configured.get(client);
  if (done === undefined) {
    done = client.ask({ type: 'probe', threads: threads() }).then((reply) => ({ webgpu: reply.webgpu ?? null, threads: reply.threads ?? 1 }));
    configured.set(client, done);
  }
  return done;
}

/** Starts the WASM worker and asks what the page has: a WebGPU adapter (as workers see it), WASM threads. */
export function probe(): Promise<Environment> {
  return configure(workerFor('wasm'));
}

/** The browser's WebGPU adapter, or null when it offers none. */
export async function webGpuAdapter(): Promise<GpuInfo | null> {
  return (await probe()).webgpu;
}

/** Stops a backend's worker outright (its sessions and runs in flight with it). */
export function stopBackend(backend: Backend, reason: string): void {
  workers.get(backend)?.stop(reason);
}

/** The network's input and output buffers; `run` hands them to the worker and puts them back. */
export interface RunBuffers {
  input: Float32Array;
  output: Float32Array;
}

/** A style network opened in its backend's worker: planar RGB 0..255 in, the same layout out. */
export class StyleSession {
  private released = false;

  private constructor(private readonly client: WorkerClient, private readonly id: number, readonly backend: Backend) {}

  /** @throws Error naming the backend when onnxruntime cannot load the model there. */
  static async create(model: Uint8Array, backend: Backend): Promise<StyleSession> {
    const client = workerFor(backend);
    await configure(client);
    const reply = await client.ask({ type: 'create', model, backend });
    return new StyleSession(client, reply.session!, backend);
  }

  /**
   * Runs the network on `buffers.input` ([1, 3, height, width]) into `buffers.output`. Both are
   * away in the worker until this settles, then back in `buffers` (the same memory). Resolves to
   * the milliseconds onnxruntime took (without the wait in the worker's queue).
   * @throws Error when the network fails or returns another shape.
   */
  async run(buffers: RunBuffers, width: number, height: number): Promise<number> {
    const { input, output } = buffers;
    try {
      const reply = await this.client.ask({ type: 'run', session: this.id, input, output, width, height }, [input.buffer, output.buffer]);
      buffers.input = reply.input!;
      buffers.output = reply.output!;
      return reply.ms ?? 0;
    } catch (error) {
      const reply = (error as { reply?: Reply }).reply;
      if (reply?.input !== undefined && reply.output !== undefined) [buffers.input, buffers.output] = [reply.input, reply.output];
      throw error;
    }
  }

  /** Frees the session in the worker (GPU buffers, WASM memory); nothing to do once the worker is gone. */
  async release(): Promise<void> {
    if (this.released) return;
    this.released = true;
    await this.client.ask({ type: 'release', session: this.id }).catch(() => undefined);
  }
}

/** An error's message, whatever was thrown. */
export function messageOf(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}
