/**
 * The page's side of the inference worker (worker.ts): one worker for the page, style networks
 * opened in it on WebGPU or WASM, frames sent to it and back as transferred buffers (no copies,
 * no allocation per frame).
 */
import type { Reply, Request } from './worker.js';

export type Backend = 'wasm' | 'webgpu';

/** Distributes Omit over a union, so each request keeps its own fields. */
type WithoutId<T> = T extends unknown ? Omit<T, 'id'> : never;

let worker: Worker | undefined;
let nextId = 1;
const pending = new Map<number, { resolve: (reply: Reply & { ok: true }) => void; reject: (error: Error & { reply?: Reply }) => void }>();
let probed: Promise<{ webgpu: boolean; threads: number }> | undefined;

function fail(message: string): void {
  for (const { reject } of pending.values()) reject(new Error(message));
  pending.clear();
  worker = undefined;
  probed = undefined;
}

/** Sends a request to the worker (started on first use) and resolves with its reply. */
function ask(request: WithoutId<Request>, transfer: Transferable[] = []): Promise<Reply & { ok: true }> {
  if (worker === undefined) {
    const url = document.querySelector<HTMLMetaElement>('meta[name="pastiche-worker"]')?.content;
    if (url === undefined) throw new Error('index.html names no inference worker');
    worker = new Worker(url, { type: 'module', name: 'pastiche-inference' });
    worker.onmessage = (event: MessageEvent<Reply>) => {
      const reply = event.data;
      const waiting = pending.get(reply.id);
      pending.delete(reply.id);
      if (reply.ok) waiting?.resolve(reply);
      else waiting?.reject(Object.assign(new Error(reply.error), { reply }));
    };
    worker.onerror = (event) => fail(`the inference worker failed: ${event.message || 'it could not be loaded'}`);
  }
  const id = nextId++;
  return new Promise((resolve, reject) => {
    pending.set(id, { resolve, reject });
    worker!.postMessage({ ...request, id }, transfer);
  });
}

/** Starts the worker and asks what it has: a WebGPU adapter, and the WASM thread count it runs. */
export function probe(): Promise<{ webgpu: boolean; threads: number }> {
  // Threads need SharedArrayBuffer, granted only to a cross-origin isolated page (the server
  // sends COOP/COEP on every reply). onnxruntime's own default is half the cores.
  const threads = self.crossOriginIsolated ? Math.max(1, Math.min(4, navigator.hardwareConcurrency || 1)) : 1;
  probed ??= ask({ type: 'probe', threads }).then((reply) => ({ webgpu: reply.webgpu ?? false, threads: reply.threads ?? 1 }));
  return probed;
}

/** Whether the worker can use a WebGPU adapter. */
export async function hasWebGpu(): Promise<boolean> {
  return (await probe()).webgpu;
}

/** The network's input and output buffers; `run` hands them to the worker and puts them back. */
export interface RunBuffers {
  input: Float32Array;
  output: Float32Array;
}

/** A style network opened in the worker on one backend: planar RGB 0..255 in, the same layout out. */
export class StyleSession {
  private released = false;

  private constructor(private readonly id: number, readonly backend: Backend) {}

  /** @throws Error naming the backend when onnxruntime cannot load the model there. */
  static async create(model: Uint8Array, backend: Backend): Promise<StyleSession> {
    await probe();
    const reply = await ask({ type: 'create', model, backend });
    return new StyleSession(reply.session!, backend);
  }

  /**
   * Runs the network on `buffers.input` ([1, 3, height, width]) into `buffers.output`. Both are
   * away in the worker until this settles, then back in `buffers` (the same memory).
   * @throws Error when the network fails or returns another shape.
   */
  async run(buffers: RunBuffers, width: number, height: number): Promise<void> {
    const { input, output } = buffers;
    try {
      const reply = await ask({ type: 'run', session: this.id, input, output, width, height }, [input.buffer, output.buffer]);
      buffers.input = reply.input!;
      buffers.output = reply.output!;
    } catch (error) {
      const reply = (error as { reply?: Reply }).reply;
      if (reply?.input !== undefined && reply.output !== undefined) [buffers.input, buffers.output] = [reply.input, reply.output];
      throw error;
    }
  }

  /** Frees the session in the worker (GPU buffers, WASM memory). */
  async release(): Promise<void> {
    if (this.released) return;
    this.released = true;
    await ask({ type: 'release', session: this.id });
  }
}

/** An error's message, whatever was thrown. */
export function messageOf(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}
