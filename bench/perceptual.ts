/**
 * Style and content losses of stylised images as the benches report them (VGG19 on the shared
 * data's weights): the style loss against a style image (Gram MSE summed over relu1_1…relu5_1,
 * Grams normalised by C·H·W as in training, style image at 512 longer side), the content loss
 * against the photo (MSE of relu4_2 features). Used by the quality and temporal benches.
 */
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { readImage } from '../src/image/codec.js';
import type { RgbImage } from '../src/image/types.js';
import { withModel, type RunTensor } from '../src/runtime/index.js';
import { targetsModel, type LossLayers } from '../src/style/gatys-graphs.js';
import { TRAIN_CONTENT_LAYERS, TRAIN_STYLE_LAYERS } from '../src/style/train.js';
import { resolveVggWeights } from '../src/weights/download.js';
import { loadVggWeights, type VggWeights } from '../src/weights/vgg-weights.js';
import { messageOf } from '../src/util/errors.js';

/** Longer side of the style image when its Grams are taken. */
export const STYLE_SIZE = 512;
export const LAYERS: LossLayers = {
  content: TRAIN_CONTENT_LAYERS, style: TRAIN_STYLE_LAYERS, styleLayerWeights: TRAIN_STYLE_LAYERS.map(() => 1), pooling: 'max',
};

export interface Losses {
  readonly style: number;
  readonly content: number;
}

export interface LossMeter {
  /** What is measured, for the report. */
  readonly description: string;
  /** The losses of each output of `photo` (all the photo's size). */
  measure(photo: RgbImage, outputs: readonly RgbImage[]): Promise<Losses[]>;
}

/** VGG19: the shared data's TF.js folder, else whatever resolveVggWeights finds ($PASTICHE_VGG, the store's cache). */
export async function vggWeights(dataDir: string): Promise<VggWeights | string> {
  const shared = join(dataDir, 'models/vgg19-imagenet-tfjs-uint8');
  try {
    const path = existsSync(shared) ? shared : (await resolveVggWeights({ depth: 19 })).path;
    return await loadVggWeights(path, { depth: 19, lastTap: 'relu5_1' });
  } catch (error) {
    return `no VGG19 weights (${messageOf(error)})`;
  }
}

const planar = (image: RgbImage): RunTensor => ({ data: image.data, dims: [1, 3, image.height, image.width] });

function mse(a: Float32Array, b: Float32Array): number {
  let sum = 0;
  for (let i = 0; i < a.length; i++) {
    const d = a[i] - b[i];
    sum += d * d;
  }
  return sum / a.length;
}

/** One VGG graph per image size, run on every image given, then released. */
async function features(vgg: VggWeights, images: readonly RgbImage[], threads: number): Promise<Record<string, RunTensor>[]> {
  const { width, height } = images[0];
  return withModel(targetsModel(vgg, LAYERS, width, height), { threads }, `VGG19 ${width}x${height}`, async (net) => {
    const out: Record<string, RunTensor>[] = [];
    for (const image of images) out.push(await net.run({ image: planar(image) }));
    return out;
  });
}

/** A meter for outputs in the style of the image at `stylePath`. */
export async function createLossMeter(vgg: VggWeights, stylePath: string, threads: number): Promise<LossMeter> {
  const style = (await readImage(stylePath, { size: STYLE_SIZE })).image;
  const [targets] = await features(vgg, [style], threads);
  const styleLoss = (f: Record<string, RunTensor>): number => LAYERS.style.reduce((sum, l) => sum + mse(f[`gram.${l}`].data, targets[`gram.${l}`].data), 0);
  const contentLoss = (f: Record<string, RunTensor>, photo: Record<string, RunTensor>): number =>
    LAYERS.content.reduce((sum, l) => sum + mse(f[`feat.${l}`].data, photo[`feat.${l}`].data), 0);
  return {
    description: `style image ${stylePath} at ${style.width}x${style.height}; style = Σ Gram MSE over ${LAYERS.style.join(', ')}; content = MSE of ${LAYERS.content.join(', ')}`,
    async measure(photo, outputs) {
      const [fPhoto, ...fOut] = await features(vgg, [photo, ...outputs], threads);
      return fOut.map((f) => ({ style: styleLoss(f), content: contentLoss(f, fPhoto) }));
    },
  };
}

export const geomean = (xs: readonly number[]): number => Math.exp(xs.reduce((s, x) => s + Math.log(x), 0) / xs.length);
