/**
 * The inference workers' body: onnxruntime-web runs in a worker, off the page's main thread, so a
 * slow frame or a large photo never freezes the page's controls. worker-wasm.ts serves with
 * onnxruntime-web's plain WASM build (half the download of the WebGPU one, and faster per frame
 * in our measurements), worker-webgpu.ts with the build that has WebGPU; only those two import it.
 * Their wasm files come from this server (/ort/<version>/, never a CDN); threads when the page is
 * cross-origin isolated. Messages: see {@link Request}; buffers travel as transferables both ways.
 */
import type * as Ort from 'onnxruntime-web';

declare const ORT_VERSION: string; // defined by the server's bundler

/** What the page asks; every request carries an `id` its reply repeats. */
export type Request =
  | { readonly type: 'probe'; readonly id: number; readonly threads: number }
  | { readonly type: 'create'; readonly id: number; readonly model: Uint8Array; readonly backend: 'wasm' | 'webgpu' }
  | { readonly type: 'run'; readonly id: number; readonly session: number; readonly input: Float32Array; readonly output: Float32Array; readonly width: number; readonly height: number }
  | { readonly type: 'release'; readonly id: number; readonly session: number };

export type Reply =
  | { readonly id: number; readonly ok: true; readonly webgpu?: GpuInfo | null; readonly threads?: number; readonly session?: number; readonly input?: Float32Array; readonly output?: Float32Array; readonly ms?: number }
  | { readonly id: number; readonly ok: false; readonly error: string; readonly input?: Float32Array; readonly output?: Float32Array };

/** The WebGPU adapter a worker sees: its name and whether it is a software one (SwiftShader, llvmpipe). */
export interface GpuInfo {
  readonly name: string;
  readonly software: boolean;
}

interface AdapterInfo {
  readonly vendor?: string;
  readonly architecture?: string;
  readonly device?: string;
  readonly description?: string;
  readonly isFallbackAdapter?: boolean;
}

interface Scope {
  postMessage(message: Reply, transfer?: Transferable[]): void;
  onmessage: ((event: MessageEvent<Request>) => void) | null;
  readonly location: Location;
  readonly navigator: Navigator & { gpu?: { requestAdapter(): Promise<{ info?: AdapterInfo; isFallbackAdapter?: boolean } | null> } };
}
const scope = self as unknown as Scope;

/** The onnxruntime-web build this worker serves with (see {@link serveInference}). */
let ort: typeof Ort;
const sessions = new Map<number, { session: Ort.InferenceSession; input: string; output: string }>();
let nextSession = 1;

const messageOf = (error: unknown): string => (error instanceof Error ? error.message : String(error));

async function webGpu(): Promise<GpuInfo | null> {
  try {
    const adapter = await scope.navigator.gpu?.requestAdapter();
    if (adapter === undefined || adapter === null) return null;
    const info = adapter.info ?? {};
    const name = [info.vendor, info.architecture, info.description || info.device].filter(Boolean).join(' ') || 'unnamed adapter';
    const software = Boolean(info.isFallbackAdapter ?? adapter.isFallbackAdapter) || /swiftshader|llvmpipe|lavapipe|software|microsoft basic/i.test(name);
    return { name, software };
  } catch {
    return null;
  }
}

async function handle(request: Request): Promise<[Reply, Transferable[]]> {
  switch (request.type) {
    case 'probe': {
      ort.env.wasm.wasmPaths = `${scope.location.origin}/ort/${ORT_VERSION}/`;
      ort.env.wasm.numThreads = request.threads;
      ort.env.logLevel = 'error';
      return [{ id: request.id, ok: true, webgpu: await webGpu(), threads: request.threads }, []];
    }
    case 'create': {
      const name = request.backend === 'wasm' ? 'WASM' : 'WebGPU';
      if (request.backend === 'webgpu' && (await webGpu()) === null) throw new Error('WebGPU backend: this browser offers no WebGPU adapter');
      let session: Ort.InferenceSession;
      try {
        // One provider only: onnxruntime would otherwise fall back to WASM without saying so.
        session = await ort.InferenceSession.create(request.model, { executionProviders: [request.backend], graphOptimizationLevel: 'all' });
      } catch (error) {
        throw new Error(`${name} backend could not load the model: ${messageOf(error)}`);
      }
      const id = nextSession++;
      sessions.set(id, { session, input: session.inputNames[0], output: session.outputNames[0] });
      return [{ id: request.id, ok: true, session: id }, []];
    }
    case 'run': {
      const { input, output, width, height } = request;
      const entry = sessions.get(request.session);
      if (entry === undefined) throw new Error('the session was released');
      const tensor = new ort.Tensor('float32', input, [1, 3, height, width]);
      const started = performance.now();
      const results = await entry.session.run({ [entry.input]: tensor });
      const ms = performance.now() - started;
      try {
        const dims = results[entry.output].dims;
        if (dims.length !== 4 || dims[1] !== 3 || dims[2] !== height || dims[3] !== width) {
          throw new Error(`expected an output of [1, 3, ${height}, ${width}] but the model produced [${dims.join(', ')}]`);
        }
        output.set(results[entry.output].data as Float32Array);
      } finally {
        // Disposed at once (GPU buffers included), so nothing piles up frame after frame.
        for (const value of Object.values(results)) value.dispose();
      }
      return [{ id: request.id, ok: true, input, output, ms }, [input.buffer, output.buffer]];
    }
    case 'release': {
      const entry = sessions.get(request.session);
      sessions.delete(request.session);
      await entry?.session.release();
      return [{ id: request.id, ok: true }, []];
    }
  }
}

/**
 * One request at a time: WebGPU runs yield inside onnxruntime's wasm (asyncify), and a second run
 * started meanwhile in the same instance is not safe. The page uses one worker per backend, so a
 * slow backend never holds up the other.
 */
let queue: Promise<unknown> = Promise.resolve();

/** Answers the page's requests with `build`, one of onnxruntime-web's builds. */
export function serveInference(build: typeof Ort): void {
  ort = build;
  scope.onmessage = (event) => {
    const request = event.data;
    queue = queue.then(() => handle(request)).then(
      ([reply, transfer]) => scope.postMessage(reply, transfer),
      (error: unknown) => {
        // A failed run still hands its buffers back, so the page can go on (or show the error).
        const buffers = request.type === 'run' ? { input: request.input, output: request.output } : {};
        scope.postMessage({ id: request.id, ok: false, error: messageOf(error), ...buffers }, request.type === 'run' ? [request.input.buffer, request.output.buffer] : []);
      },
    );
  };
}
