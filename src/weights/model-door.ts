/**
 * The model door: every ONNX file pastiche is asked to open (`--model`, `models import`, the
 * library API, the server) passes through here before onnxruntime sees it. It must be a regular
 * file under the size cap, decode as ONNX, keep every tensor inside the file, map one image to one
 * image, and on a trial run return an image of the input's size with finite values.
 *
 * External data is refused outright: onnxruntime resolves it against the working directory for
 * models loaded from bytes, so a crafted file could paint `~/.ssh/id_rsa` into every output, and
 * pastiche's own models never need it. onnxruntime is handed the bytes that were checked,
 * re-encoded, so fields this decoder skips or resolves differently never reach it.
 */
import { createHash } from 'node:crypto';
import { constants, type Stats } from 'node:fs';
import { open, stat } from 'node:fs/promises';
import onnxProto, { type onnx } from 'onnx-proto';
import { withModel } from '../runtime/index.js';
import { FileError } from '../util/errors.js';
import { unpackHalfWeights } from './half-weights.js';
import { checkStyleModel, decodeOnnx } from './onnx-file.js';

/**
 * Largest model file read: 2 GiB, protobuf's limit for one message, so no ONNX file that holds
 * its own weights is larger. Checked with stat before a byte is read.
 */
export const MODEL_MAX_BYTES = 2 * 1024 ** 3;

/** Side of the square test image a model is run on before it is accepted. */
export const TRIAL_SIZE = 64;

function formatBytes(n: number): string {
  return n >= 1024 ** 3 ? `${+(n / 1024 ** 3).toFixed(1)} GiB` : n >= 1024 ** 2 ? `${+(n / 1024 ** 2).toFixed(1)} MiB` : `${n} bytes`;
}

function kindOf(info: Stats): string {
  if (info.isDirectory()) return 'a folder';
  if (info.isFIFO()) return 'a FIFO';
  if (info.isCharacterDevice()) return 'a character device';
  if (info.isBlockDevice()) return 'a block device';
  if (info.isSocket()) return 'a socket';
  return 'not a file';
}

function checkRegular(path: string, info: Stats, maxBytes: number, what: string): void {
  if (!info.isFile()) throw new FileError(path, `not a regular file (${kindOf(info)})`);
  if (info.size > maxBytes) throw new FileError(path, `too large for ${what} (${info.size} bytes, over the limit of ${formatBytes(maxBytes)})`);
}

/**
 * Reads a regular file of at most `maxBytes`: devices (`/dev/zero`), FIFOs and folders are refused
 * before reading, so memory stays bounded and nothing waits for a writer.
 * @throws FileError naming the file when it is not a regular file or is too large; Node's error
 *   (which names the path) when it cannot be opened.
 */
export async function readRegularFile(path: string, maxBytes = MODEL_MAX_BYTES, what = 'a model file'): Promise<Buffer> {
  checkRegular(path, await stat(path), maxBytes, what);
  // Non-blocking, and checked again on the open handle: the path may have been swapped since.
  const handle = await open(path, constants.O_RDONLY | (constants.O_NONBLOCK ?? 0));
  try {
    const info = await handle.stat();
    checkRegular(path, info, maxBytes, what);
    const buffer = Buffer.alloc(info.size);
    let filled = 0;
    while (filled < buffer.length) {
      const { bytesRead } = await handle.read(buffer, filled, Math.min(buffer.length - filled, 2 ** 30), filled);
      if (bytesRead === 0) break;
      filled += bytesRead;
    }
    return filled === buffer.length ? buffer : buffer.subarray(0, filled);
  } finally {
    await handle.close();
  }
}

/** Shows a name taken from a file safely on one line: quoted, control characters escaped, cut short. */
function quote(text: string): string {
  return JSON.stringify(text.length > 80 ? `${text.slice(0, 80)}…` : text);
}

function externalReference(tensor: onnx.ITensorProto): string | null {
  const entries = tensor.externalData ?? [];
  const external = tensor.dataLocation === onnxProto.onnx.TensorProto.DataLocation.EXTERNAL || entries.length > 0;
  if (!external) return null;
  const location = entries.find((e) => e.key === 'location')?.value;
  return location ? `external data in ${quote(location)}` : 'external data';
}

interface Found { readonly where: string; readonly reference: string }

function findInTensors(tensors: readonly (onnx.ITensorProto | null | undefined)[], where: (t: onnx.ITensorProto) => string): Found | null {
  for (const t of tensors) {
    const reference = t ? externalReference(t) : null;
    if (reference) return { where: where(t!), reference };
  }
  return null;
}

function sparseTensors(sparse: readonly onnx.ISparseTensorProto[]): onnx.ITensorProto[] {
  return sparse.flatMap((s) => [s.values, s.indices].filter((t): t is onnx.ITensorProto => Boolean(t)));
}

function findInNodes(nodes: readonly onnx.INodeProto[], inside: string): Found | null {
  for (const node of nodes) {
    const op = node.opType ?? '';
    const nodeName = `${/^[A-Za-z][A-Za-z0-9_]{0,40}$/.test(op) ? op : quote(op)} node ${quote(node.name ?? '')}`;
    for (const a of node.attribute ?? []) {
      const where = `tensor attribute ${quote(a.name ?? '')} of ${nodeName}${inside}`;
      const tensors = [a.t, ...(a.tensors ?? []), ...sparseTensors([a.sparseTensor, ...(a.sparseTensors ?? [])].filter((s): s is onnx.ISparseTensorProto => Boolean(s)))];
      const found = findInTensors(tensors, () => where)
        ?? [a.g, ...(a.graphs ?? [])].reduce<Found | null>((f, g) => f ?? (g ? findInGraph(g, ` in a subgraph of ${nodeName}${inside}`) : null), null);
      if (found) return found;
    }
  }
  return null;
}

function findInGraph(graph: onnx.IGraphProto, inside: string): Found | null {
  return findInTensors(graph.initializer ?? [], (t) => `initializer ${quote(t.name ?? '')}${inside}`)
    ?? findInTensors(sparseTensors(graph.sparseInitializer ?? []), (t) => `sparse initializer ${quote(t.name ?? '')}${inside}`)
    ?? findInNodes(graph.node ?? [], inside);
}

/**
 * Refuses any tensor whose data lives outside the file: initializers, sparse initializers and
 * tensor attributes, in the main graph, nested graphs (If/Loop/Scan bodies), local functions and
 * training info.
 * @throws FileError naming the file and the first tensor found.
 */
export function checkNoExternalData(model: onnx.IModelProto, label: string): void {
  const found = (model.graph ? findInGraph(model.graph, '') : null)
    ?? (model.functions ?? []).reduce<Found | null>((f, fn) => f ?? findInNodes(fn.node ?? [], ` in function ${quote(fn.name ?? '')}`), null)
    ?? (model.trainingInfo ?? []).reduce<Found | null>((f, info) => f
      ?? [info.initialization, info.algorithm].reduce<Found | null>((g, graph) => g ?? (graph ? findInGraph(graph, ' in training info') : null), null), null);
  if (found) {
    throw new FileError(label, `${found.where} refers to ${found.reference}; pastiche only opens models that hold all their weights inside the file`);
  }
}

/** A model that passed the door's static checks: the bytes to give onnxruntime and its image input and output. */
export interface AdmittedModel {
  readonly model: onnx.ModelProto;
  readonly input: string;
  readonly output: string;
}

/**
 * The static checks on ONNX bytes: decodes, refuses external data, and checks one float image in
 * and one out. Weights stored as float16 (half-weights.ts, as the built-ins ship) come out
 * as float32 initializers, so every user of the model sees the plain network.
 * @throws FileError naming `label`.
 */
export function admitOnnx(bytes: Uint8Array, label: string): AdmittedModel {
  const model = decodeOnnx(bytes, label);
  checkNoExternalData(model, label);
  unpackHalfWeights(model);
  return { model, ...checkStyleModel(model, label) };
}

/**
 * Reads an ONNX file through the door's static checks (regular file, size cap, ONNX, no external
 * data, image in and out).
 * @throws FileError naming the file.
 */
export async function readOnnxFile(path: string, maxBytes = MODEL_MAX_BYTES): Promise<AdmittedModel> {
  return admitOnnx(await readRegularFile(path, maxBytes), path);
}

/**
 * Throws unless every value a model produced is finite. Called on every network output: NaN would
 * otherwise be written as black pixels.
 * @throws Error naming the model.
 */
export function checkFiniteOutput(label: string, data: Float32Array, context = ''): void {
  let bad = 0;
  for (let i = 0; i < data.length; i++) if (!Number.isFinite(data[i])) bad++;
  if (bad > 0) throw nonFiniteOutput(label, bad, data.length, context);
}

/** The error for a model whose output held `bad` non-finite values of `total`. */
export function nonFiniteOutput(label: string, bad: number, total: number, context = ''): Error {
  return new Error(`${label}: produced non-finite values (NaN or Infinity in ${bad} of ${total} outputs${context})`);
}

/** A smooth, varied test image (RGB 16..239): no flat areas, where a normalisation might divide by zero. */
function trialImage(): Float32Array {
  const n = TRIAL_SIZE;
  const data = new Float32Array(3 * n * n);
  for (let c = 0; c < 3; c++) {
    for (let y = 0; y < n; y++) {
      for (let x = 0; x < n; x++) data[(c * n + y) * n + x] = 127.5 + 111.5 * Math.sin(0.21 * x + 0.13 * y * (c + 1) + 2 * c) * Math.cos(0.17 * y - 0.05 * x);
    }
  }
  return data;
}

/** Models (by SHA-1 of their bytes) that passed a trial run in this process. */
const passed = new Set<string>();

/**
 * Runs a model once on a 1x3x64x64 test image, on the CPU in a session of its own, and checks it
 * returns one image of the same size with finite values. Repeated calls for the same bytes are free.
 * @throws Error naming `label` when onnxruntime cannot load or run it, or its output is wrong.
 */
export async function trialRun(bytes: Uint8Array, io: { input: string; output: string }, label: string): Promise<void> {
  const key = createHash('sha1').update(bytes).digest('hex');
  if (passed.has(key)) return;
  const dims = [1, 3, TRIAL_SIZE, TRIAL_SIZE];
  await withModel(bytes, { memoryArena: false }, label, async (model) => {
    const result = (await model.run({ [io.input]: { data: trialImage(), dims } }))[io.output];
    if (result.dims.join() !== dims.join()) {
      throw new FileError(label, `a style model must return an image the size of its input, but for [${dims.join(', ')}] it returned [${result.dims.join(', ')}]`);
    }
    checkFiniteOutput(label, result.data, ` on a ${TRIAL_SIZE}x${TRIAL_SIZE} test image`);
  });
  passed.add(key);
}
