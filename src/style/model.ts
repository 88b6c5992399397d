/** A feed-forward style model ready to run: a resolved ONNX file on an onnxruntime session. */
import { loadModel, type Model, type RuntimeOptions } from '../runtime/index.js';
import { resolveModel } from '../weights/store.js';

export interface StyleModel {
  /** How the model was named (store name or path), for messages. */
  readonly label: string;
  readonly session: Model;
  readonly input: string;
  readonly output: string;
  readonly metadata: Readonly<Record<string, string>>;
  /** The ONNX file, for derived models (tiling with whole-image statistics). */
  readonly bytes: Uint8Array;
  /** Options the sessions were made with, for derived models. */
  readonly runtime: RuntimeOptions;
}

/**
 * Opens `--model`: a store name, an `.onnx` file, or a checkpoint directory, through the model
 * door (see {@link resolveModel}: regular file, size cap, no external data, a trial run).
 * @throws Error naming the model when it cannot be found, is refused, or cannot be loaded;
 *   RangeError when the execution provider is not available here.
 */
export async function openStyleModel(spec: string, runtime: RuntimeOptions = {}): Promise<StyleModel> {
  const resolved = await resolveModel(spec);
  const session = await loadModel(resolved.bytes, runtime, resolved.label);
  return { label: resolved.label, session, input: resolved.input, output: resolved.output, metadata: resolved.metadata, bytes: resolved.bytes, runtime };
}
