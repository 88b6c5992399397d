/**
 * The one place that touches onnxruntime. Sessions are cached per model and options, native
 * errors are rethrown naming the model and the input shapes, and execution providers are checked
 * against what this build of onnxruntime-node has.
 */
import { createHash } from 'node:crypto';
import { availableParallelism } from 'node:os';
import * as ort from 'onnxruntime-node';

/**
 * onnxruntime's own log goes to stderr with colour escapes, and repeats errors that are rethrown
 * here with context anyway (a missing CUDA library, a failing node): keep it for PASTICHE_DEBUG.
 */
const DEBUG = Boolean(process.env.PASTICHE_DEBUG);
ort.env.logLevel = DEBUG ? 'warning' : 'fatal';

/**
 * Every core this process may use (affinity and cgroup limits respected): the default thread
 * count. onnxruntime's own default was measured to pick one thread on a 2-core VM (1.8 fps
 * instead of 3.2 at 640x480), so it is never left to choose.
 */
export function defaultThreads(): number {
  return Math.max(1, availableParallelism());
}

/** Spinning threads by default: see {@link RuntimeOptions.spinning}. */
export const SPINNING_DEFAULT = false;

export const EXECUTION_PROVIDERS = ['cpu', 'cuda', 'coreml', 'dml', 'webgpu', 'tensorrt'] as const;
export type ExecutionProvider = (typeof EXECUTION_PROVIDERS)[number];

export interface RuntimeOptions {
  /** Threads for one operator (onnxruntime's intra-op threads); default {@link defaultThreads}, every core this process may use. */
  readonly threads?: number;
  /** Where to run: 'cpu' (default), or 'cuda' / 'coreml' / 'dml' where the platform has them. */
  readonly executionProvider?: ExecutionProvider;
  /**
   * Whether onnxruntime's idle threads busy-wait for the next operator (default off). Spinning
   * saves microseconds per operator on an idle machine but burns the cores that ffmpeg's decoder
   * and encoder, the browser or other jobs need: see {@link SPINNING_DEFAULT}.
   */
  readonly spinning?: boolean;
  /**
   * onnxruntime's CPU memory arena (default on): faster for repeated runs, but it keeps its
   * high-water mark in chunks, which for one huge graph can cost gigabytes.
   */
  readonly memoryArena?: boolean;
  /**
   * onnxruntime's memory pattern (default on): plans one block for all intermediate tensors.
   * With the arena it can double the memory of a huge graph on its second run (VGG19's Gatys
   * gradient at 2048²: 13 GiB after one run, killed at 24 GiB on the second; 13.7 GiB without).
   */
  readonly memoryPattern?: boolean;
}

/** A float32 tensor crossing into or out of the runtime. */
export interface RunTensor {
  readonly data: Float32Array;
  readonly dims: readonly number[];
}

/** Execution providers this onnxruntime-node build can use on this machine. */
export function availableExecutionProviders(): string[] {
  return ort.listSupportedBackends().map((b) => b.name);
}

/** Providers inside the onnxruntime-node binary; the others (cuda, tensorrt) need libraries installed beside it. */
function bundledProviders(): string[] {
  return ort.listSupportedBackends().filter((b) => b.bundled).map((b) => b.name);
}

function providerUnavailable(provider: string, reason: string, cause?: unknown): RangeError {
  return new RangeError(`Execution provider '${provider}' is not available here (${reason}); available: ${bundledProviders().join(', ')}`, { cause });
}

function checkProvider(provider: ExecutionProvider): void {
  if (!availableExecutionProviders().includes(provider)) throw providerUnavailable(provider, 'this onnxruntime-node build does not have it');
}

/**
 * A session fails this way when the provider's native library is missing (onnxruntime-node lists
 * cuda and tensorrt even where they are not installed); the model was never looked at.
 */
function isProviderLoadError(message: string): boolean {
  return /AppendExecutionProvider|providers_shared|Failed to load shared library/i.test(message);
}

/** Why onnxruntime refused a model, in one line (its unknown-operator message is a graph dump). */
function loadProblem(message: string): string {
  const unknown = /No Op registered for (\S+) with domain_version of (\d+)/.exec(message);
  if (unknown) return `operator '${unknown[1]}' is unknown to onnxruntime at opset ${unknown[2]}`;
  return message;
}

/** A loaded ONNX model ready to run. */
export class Model {
  private constructor(
    private readonly session: ort.InferenceSession,
    /** What the model is called in error messages (a path or a name). */
    readonly label: string,
  ) {}

  get inputNames(): readonly string[] {
    return this.session.inputNames;
  }

  get outputNames(): readonly string[] {
    return this.session.outputNames;
  }

  /** Creates a session (uncached); prefer `loadModel`. */
  static async create(source: string | Uint8Array, label: string, options: RuntimeOptions = {}): Promise<Model> {
    const provider = options.executionProvider ?? 'cpu';
    checkProvider(provider);
    const sessionOptions: ort.InferenceSession.SessionOptions = {
      executionProviders: provider === 'cpu' ? ['cpu'] : [provider, 'cpu'],
      graphOptimizationLevel: 'all',
      executionMode: 'sequential',
      enableCpuMemArena: options.memoryArena ?? true,
      enableMemPattern: options.memoryPattern ?? true,
      logSeverityLevel: DEBUG ? 2 : 4,
      intraOpNumThreads: options.threads ?? defaultThreads(),
      interOpNumThreads: 1,
      extra: { session: { intra_op: { allow_spinning: (options.spinning ?? SPINNING_DEFAULT) ? '1' : '0' } } },
    };
    try {
      const session = typeof source === 'string'
        ? await ort.InferenceSession.create(source, sessionOptions)
        : await ort.InferenceSession.create(source, sessionOptions);
      return new Model(session, label);
    } catch (error) {
      const message = firstLine(error);
      if (provider !== 'cpu' && isProviderLoadError(message)) {
        throw providerUnavailable(provider, `onnxruntime-node could not load it: ${message}`, error);
      }
      throw new Error(`${label}: not a model onnxruntime can load (${loadProblem(message)})`, { cause: error });
    }
  }

  /**
   * Runs the model; feeds and results are float32 tensors by name. With `fetches`, only those
   * outputs are computed (and only the nodes they need run).
   */
  async run(feeds: Readonly<Record<string, RunTensor>>, fetches?: readonly string[]): Promise<Record<string, RunTensor>> {
    const ortFeeds: Record<string, ort.Tensor> = {};
    for (const [name, t] of Object.entries(feeds)) ortFeeds[name] = new ort.Tensor('float32', t.data, t.dims);
    let results: ort.InferenceSession.ReturnType;
    try {
      results = fetches ? await this.session.run(ortFeeds, [...fetches]) : await this.session.run(ortFeeds);
    } catch (error) {
      const shapes = Object.entries(feeds).map(([n, t]) => `${n} [${t.dims.join(', ')}]`).join(', ');
      throw new Error(`${this.label}: inference failed for inputs ${shapes}: ${firstLine(error)}`, { cause: error });
    }
    const out: Record<string, RunTensor> = {};
    for (const [name, t] of Object.entries(results)) {
      if (t.type !== 'float32') throw new Error(`${this.label}: output ${name} is ${t.type}, expected float32`);
      out[name] = { data: t.data as Float32Array, dims: t.dims };
    }
    return out;
  }

  /** Frees the native session. */
  async release(): Promise<void> {
    await this.session.release();
  }
}

function firstLine(error: unknown): string {
  const message = error instanceof Error ? error.message : String(error);
  return message.split('\n')[0].trim();
}

/**
 * Runs `use` with a session of its own and releases it afterwards, arena and all: for models
 * built for one large job (a tile pass, an optimisation scale) that must not pile up in memory.
 */
export async function withModel<T>(source: string | Uint8Array, options: RuntimeOptions, label: string, use: (model: Model) => Promise<T>): Promise<T> {
  const model = await Model.create(source, label, options);
  try {
    return await use(model);
  } finally {
    await model.release();
  }
}

const cache = new Map<string, Promise<Model>>();

/**
 * Loads a model, reusing an earlier session for the same file (or bytes) and options.
 * @throws Error naming the model when onnxruntime cannot load it.
 */
export function loadModel(source: string | Uint8Array, options: RuntimeOptions = {}, label?: string): Promise<Model> {
  const id = typeof source === 'string' ? `path:${source}` : `sha1:${createHash('sha1').update(source).digest('hex')}`;
  const key = `${id}|${options.threads ?? ''}|${options.executionProvider ?? 'cpu'}|${options.memoryArena ?? true}|${options.memoryPattern ?? true}`;
  let model = cache.get(key);
  if (!model) {
    model = Model.create(source, label ?? (typeof source === 'string' ? source : 'model'), options);
    cache.set(key, model);
    model.catch(() => cache.delete(key));
  }
  return model;
}

/** Releases every cached session (tests and long-running servers). */
export async function clearModelCache(): Promise<void> {
  const models = [...cache.values()];
  cache.clear();
  await Promise.all(models.map(async (m) => (await m.catch(() => null))?.release()));
}
