/**
 * VGG16/19 loss-network weights from whatever file a user has, as the parameters `buildVgg`
 * takes: `block{b}_conv{i}.weight` [out, in, 3, 3] (ONNX OIHW) and `.bias` [out].
 *
 * Sources and their namings:
 *  - TF.js layers model folder / Keras HDF5: `block1_conv1/kernel` HWIO [3, 3, in, out] → 'caffe' input;
 *  - PyTorch state dict (torchvision): `features.0.weight` OIHW → 'torch' input;
 *  - safetensors: either of those, or pastiche's own names (preprocessing from the
 *    `pastiche.preprocessing` metadata entry, else 'caffe').
 */
import { open, stat } from 'node:fs/promises';
import { extname, join } from 'node:path';
import type { Tensor } from '../graph/index.js';
import { checkTaps, vggParamShapes, type VggDepth, type VggPreprocessing } from '../nets/vgg.js';
import { FileError, messageOf } from '../util/errors.js';
import { isHdf5, openKerasH5 } from './keras-h5.js';
import { hwioToOihw } from './layout.js';
import { looksLikeSafetensors, openSafetensors } from './safetensors.js';
import type { TensorSource } from './tensor-source.js';
import { openTfjsLayers } from './tfjs-layers.js';
import { openTorchPth } from './torch-pth.js';

export type VggWeightsFormat = 'tfjs-layers' | 'keras-h5' | 'torch-pth' | 'safetensors';

export interface VggWeights {
  readonly params: Map<string, Tensor>;
  readonly depth: VggDepth;
  readonly preprocessing: VggPreprocessing;
  readonly format: VggWeightsFormat;
}

export interface LoadVggOptions {
  /** Which VGG; inferred from the layers present when omitted (VGG19 when they cannot tell). */
  readonly depth?: VggDepth;
  /** Read only the layers this tap (e.g. 'relu4_2') needs; all 13/16 convolutions when omitted. */
  readonly lastTap?: string;
}

type Opened = TensorSource & { close?(): unknown; metadata?: Record<string, string> };

/** Picks the reader by what the file is (its first bytes), falling back on its name. */
async function openSource(source: string): Promise<{ opened: Opened; format: VggWeightsFormat }> {
  let isDir: boolean;
  try {
    isDir = (await stat(source)).isDirectory();
  } catch (error) {
    throw new FileError(source, `no such VGG weights file or folder (${messageOf(error)})`, { cause: error });
  }
  if (isDir) {
    try {
      await stat(join(source, 'model.json'));
    } catch {
      throw new FileError(source, 'is a folder without model.json: expected a TF.js layers model folder');
    }
    return { opened: await openTfjsLayers(source), format: 'tfjs-layers' };
  }
  if (extname(source).toLowerCase() === '.json') return { opened: await openTfjsLayers(source), format: 'tfjs-layers' };
  let kind: VggWeightsFormat | undefined;
  try {
    const head = Buffer.alloc(4);
    const handle = await open(source, 'r');
    await handle.read(head, 0, 4, 0).finally(() => handle.close());
    if (await isHdf5(source)) kind = 'keras-h5';
    else if (head.readUInt32LE(0) === 0x04034b50 || head[0] === 0x80) kind = 'torch-pth';
    else if (await looksLikeSafetensors(source)) kind = 'safetensors';
  } catch (error) {
    throw new FileError(source, `cannot read VGG weights (${messageOf(error)})`, { cause: error });
  }
  if (kind === 'keras-h5') return { opened: await openKerasH5(source), format: kind };
  if (kind === 'torch-pth') return { opened: await openTorchPth(source), format: kind };
  if (kind === 'safetensors') return { opened: await openSafetensors(source), format: kind };
  throw new FileError(source, 'is not a weights file pastiche knows: expected a TF.js model folder, Keras .h5, PyTorch .pth or .safetensors');
}

type Naming = 'keras' | 'pastiche' | 'torchvision';

interface Mapping {
  /** Name in the file for each pastiche parameter. */
  readonly sourceName: (param: string) => string;
  /** Layout the file stores a parameter of pastiche shape `shape` in. */
  readonly sourceShape: (shape: readonly number[]) => number[];
  readonly convert: (t: Tensor) => Tensor;
}

const KERAS = /^block(\d)_conv(\d)\/(kernel|bias)$/;
const PASTICHE = /^block(\d)_conv(\d)\.(weight|bias)$/;
const TORCHVISION = /^(.*?)features\.(\d+)\.(weight|bias)$/;

/** torchvision's `features` index of each convolution (conv, ReLU pairs; one MaxPool per block). */
function torchvisionIndices(depth: VggDepth): Map<string, number> {
  const indices = new Map<string, number>();
  let index = 0;
  let block = '1';
  for (const name of vggParamShapes(depth).keys()) {
    const [, b, i, kind] = PASTICHE.exec(name)!;
    if (kind === 'bias') continue;
    if (b !== block) {
      index++;
      block = b;
    }
    indices.set(`block${b}_conv${i}`, index);
    index += 2;
  }
  return indices;
}

function detectNaming(names: readonly string[], path: string): { naming: Naming; prefix: string } {
  if (names.some((n) => PASTICHE.test(n))) return { naming: 'pastiche', prefix: '' };
  if (names.some((n) => KERAS.test(n))) return { naming: 'keras', prefix: '' };
  const prefixes = new Set(names.map((n) => TORCHVISION.exec(n)?.[1]).filter((p) => p !== undefined));
  if (prefixes.size === 1) return { naming: 'torchvision', prefix: [...prefixes][0]! };
  const sample = names.slice(0, 6).join(', ') + (names.length > 6 ? ', …' : '');
  if (prefixes.size > 1) throw new FileError(path, `holds several VGG feature stacks (${[...prefixes].map((p) => `${p}features`).join(', ')}); pastiche cannot tell which to use`);
  throw new FileError(path, `does not look like VGG weights: it holds ${names.length === 0 ? 'no tensors' : sample} (expected Keras names like block1_conv1/kernel or torchvision names like features.0.weight)`);
}

function inferDepth(naming: Naming, prefix: string, shapes: ReadonlyMap<string, readonly number[]>, path: string): VggDepth | undefined {
  const names = [...shapes.keys()];
  if (naming !== 'torchvision') {
    const layers = new Set(names.map((n) => (KERAS.exec(n) ?? PASTICHE.exec(n))?.slice(1, 3).join('_')).filter(Boolean));
    if (['3_4', '4_4', '5_4'].some((l) => layers.has(l))) return 19;
    // Without a fourth convolution anywhere, a block-4 layer shows block 3 ended at three.
    return layers.has('4_1') ? 16 : undefined;
  }
  if (names.some((n) => n.startsWith(`${prefix}features.`) && n.endsWith('.running_mean'))) {
    throw new FileError(path, 'holds a batch-normalised VGG (vgg16_bn / vgg19_bn), which pastiche does not support; use plain VGG16 or VGG19 weights');
  }
  const present = names
    .map((n) => TORCHVISION.exec(n))
    .filter((m): m is RegExpExecArray => m !== null && m[3] === 'weight' && shapes.get(m[0])!.length === 4)
    .map((m) => Number(m[2]));
  const fits = (depth: VggDepth): boolean => {
    const valid = new Set(torchvisionIndices(depth).values());
    return present.every((i) => valid.has(i));
  };
  const fits16 = fits(16);
  const fits19 = fits(19);
  if (!fits16 && !fits19) {
    throw new FileError(path, `has convolutions at features.{${present.sort((a, b) => a - b).join(',')}}, which fit neither VGG16 nor VGG19`);
  }
  return fits16 && fits19 ? undefined : fits19 ? 19 : 16;
}

function mappingFor(naming: Naming, prefix: string, depth: VggDepth): Mapping {
  const identity = (t: Tensor): Tensor => t;
  const same = (shape: readonly number[]): number[] => [...shape];
  if (naming === 'pastiche') return { sourceName: (p) => p, sourceShape: same, convert: identity };
  if (naming === 'torchvision') {
    const indices = torchvisionIndices(depth);
    return {
      sourceName: (p) => {
        const [, b, i, kind] = PASTICHE.exec(p)!;
        return `${prefix}features.${indices.get(`block${b}_conv${i}`)}.${kind}`;
      },
      sourceShape: same,
      convert: identity,
    };
  }
  return {
    sourceName: (p) => p.replace('.weight', '/kernel').replace('.bias', '/bias'),
    sourceShape: (s) => (s.length === 4 ? [s[2], s[3], s[1], s[0]] : [...s]),
    convert: (t) => (t.shape.length === 4 ? hwioToOihw(t) : t),
  };
}

function preprocessingFor(naming: Naming, metadata?: Record<string, string>): VggPreprocessing {
  if (naming === 'torchvision') return 'torch';
  if (naming === 'keras') return 'caffe';
  const declared = metadata?.['pastiche.preprocessing'];
  return declared === 'torch' ? 'torch' : 'caffe';
}

/**
 * Loads VGG16/19 convolution weights from a TF.js model folder, Keras .h5, PyTorch .pth or
 * .safetensors file, in pastiche's naming and ONNX layout, reading only what `lastTap` needs.
 * @example const vgg = await loadVggWeights('vgg19_weights_tf_dim_ordering_tf_kernels_notop.h5', { lastTap: 'relu4_2' });
 * @throws FileError naming the file when it is unreadable or is not VGG weights of the right
 * depth and shapes; RangeError for an unknown `lastTap`.
 */
export async function loadVggWeights(source: string, options: LoadVggOptions = {}): Promise<VggWeights> {
  const { opened, format } = await openSource(source);
  try {
    const names = [...opened.shapes.keys()];
    const { naming, prefix } = detectNaming(names, source);
    const inferred = inferDepth(naming, prefix, opened.shapes, source);
    if (options.depth !== undefined && inferred !== undefined && options.depth !== inferred) {
      throw new FileError(source, `holds VGG${inferred} weights but VGG${options.depth} was asked for`);
    }
    const depth = options.depth ?? inferred ?? 19;
    if (options.lastTap !== undefined) checkTaps(depth, [options.lastTap]);
    const wanted = vggParamShapes(depth, options.lastTap);
    const mapping = mappingFor(naming, prefix, depth);
    const sourceNames = new Map<string, string>();
    for (const [param, shape] of wanted) {
      const name = mapping.sourceName(param);
      const stored = opened.shapes.get(name);
      const expected = mapping.sourceShape(shape);
      if (!stored) {
        throw new FileError(source, `lacks '${name}' (VGG${depth} ${param.replace(/\.\w+$/, '')}${options.lastTap ? `, needed up to ${options.lastTap}` : ''})`);
      }
      if (stored.join() !== expected.join()) {
        const theano = naming === 'keras' && stored.join() === [...shape].join() ? '; this looks like Theano-ordered Keras weights, use the tf_dim_ordering file' : '';
        throw new FileError(source, `'${name}' has shape [${stored.join(', ')}] but VGG${depth} needs [${expected.join(', ')}] there: not VGG${depth} weights${theano}`);
      }
      sourceNames.set(param, name);
    }
    const read = await opened.read([...sourceNames.values()]);
    const params = new Map<string, Tensor>();
    for (const [param, name] of sourceNames) params.set(param, mapping.convert(read.get(name)!));
    return { params, depth, preprocessing: preprocessingFor(naming, opened.metadata), format };
  } finally {
    await opened.close?.();
  }
}
