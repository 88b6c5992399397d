/**
 * onnxruntime-web for the page: its wasm files come from this server (/ort/<version>/, never a
 * CDN), threads when the page is cross-origin isolated, and one style network per session on
 * WebGPU or WASM. Only this file imports onnxruntime-web.
 */
import * as ort from 'onnxruntime-web';

export type Backend = 'wasm' | 'webgpu';

declare const ORT_VERSION: string; // defined by the server's bundler

let configured = false;

/** Points onnxruntime-web at the server's copy of its wasm files and sets the thread count once. */
function configure(): void {
  if (configured) return;
  configured = true;
  ort.env.wasm.wasmPaths = `${location.origin}/ort/${ORT_VERSION}/`;
  // Threads need SharedArrayBuffer, which the browser grants only to a cross-origin isolated page
  // (the server sends COOP/COEP on every response). onnxruntime's default is half the cores.
  const cores = navigator.hardwareConcurrency || 1;
  ort.env.wasm.numThreads = self.crossOriginIsolated ? Math.max(1, Math.min(4, cores)) : 1;
  ort.env.logLevel = 'error';
}

/** Threads the WASM backend runs with (after the first session). */
export function wasmThreads(): number {
  configure();
  return Number(ort.env.wasm.numThreads ?? 1);
}

interface GpuNavigator {
  readonly gpu?: { requestAdapter(): Promise<unknown | null> };
}

let adapter: Promise<boolean> | undefined;

/** Whether this browser offers a WebGPU adapter (asked once). */
export function hasWebGpu(): Promise<boolean> {
  adapter ??= (async () => {
    const gpu = (navigator as GpuNavigator).gpu;
    if (gpu === undefined) return false;
    try {
      return (await gpu.requestAdapter()) !== null;
    } catch {
      return false;
    }
  })();
  return adapter;
}

/** A style network on one backend: planar RGB 0..255 in, the same layout out. */
export class StyleSession {
  private constructor(
    private readonly session: ort.InferenceSession,
    readonly backend: Backend,
    private readonly input: string,
    private readonly output: string,
  ) {}

  /** @throws Error naming the backend when onnxruntime cannot load the model there. */
  static async create(model: Uint8Array, backend: Backend): Promise<StyleSession> {
    configure();
    if (backend === 'webgpu' && !(await hasWebGpu())) throw new Error('this browser offers no WebGPU adapter');
    let session: ort.InferenceSession;
    try {
      // One provider only: onnxruntime would otherwise fall back to WASM without saying so.
      session = await ort.InferenceSession.create(model, { executionProviders: [backend], graphOptimizationLevel: 'all' });
    } catch (error) {
      throw new Error(`${backend === 'wasm' ? 'WASM' : 'WebGPU'} backend could not load the model: ${messageOf(error)}`);
    }
    return new StyleSession(session, backend, session.inputNames[0], session.outputNames[0]);
  }

  /**
   * Runs the network on `input` ([1, 3, height, width]) and copies the result into `out` (same
   * size); the output tensor is disposed at once, so nothing piles up frame after frame.
   * @throws Error when the network fails or returns another shape.
   */
  async run(input: Float32Array, width: number, height: number, out: Float32Array): Promise<void> {
    const tensor = new ort.Tensor('float32', input, [1, 3, height, width]);
    const results = await this.session.run({ [this.input]: tensor });
    const result = results[this.output];
    try {
      const dims = result.dims;
      if (dims.length !== 4 || dims[1] !== 3 || dims[2] !== height || dims[3] !== width) {
        throw new Error(`expected an output of [1, 3, ${height}, ${width}] but the model produced [${dims.join(', ')}]`);
      }
      out.set(result.data as Float32Array);
    } finally {
      for (const value of Object.values(results)) value.dispose();
      tensor.dispose();
    }
  }

  /** Frees the session (GPU buffers, WASM memory). */
  async release(): Promise<void> {
    await this.session.release();
  }
}

/** An error's message, whatever was thrown. */
export function messageOf(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}
