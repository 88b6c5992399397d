/**
 * The Gatys loss (content at relu4_2, Gram style losses at relu1_1 … relu5_1) through VGG19 and
 * its gradient with respect to the image, written with TF.js ops (NHWC, 'same' convolutions,
 * Caffe preprocessing as a channel reversal and mean subtraction): the independent oracle of
 * test/graph/vgg-grad.test.ts and the peer of bench/gatys.ts.
 */
import type { Tensor } from '../../src/graph/index.js';
import { tf } from './tf-reference.js';

export const STYLE_TAPS = ['relu1_1', 'relu2_1', 'relu3_1', 'relu4_1', 'relu5_1'] as const;
const CAFFE_MEAN_BGR = [103.939, 116.779, 123.68];

export interface GatysTargets {
  readonly content: Tensor;
  readonly grams: ReadonlyMap<string, Tensor>;
}

export interface GatysWeights {
  readonly content: number;
  readonly style: readonly number[];
}

/** Loss and d(loss)/d(image) for an NCHW image in 0..255, as sums of squared differences. */
export function tfGatysLoss(image: Tensor, params: ReadonlyMap<string, Tensor>, pooling: 'max' | 'avg', targets: GatysTargets, weights: GatysWeights): { loss: number; dx: Float32Array } {
  return tf.tidy(() => {
    const conv = (b: number, i: number) => ({
      w: tf.transpose(tf.tensor4d(params.get(`block${b}_conv${i}.weight`)!.data, params.get(`block${b}_conv${i}.weight`)!.shape as [number, number, number, number]), [2, 3, 1, 0]) as tf.Tensor4D,
      b: tf.tensor1d(params.get(`block${b}_conv${i}.bias`)!.data),
    });
    const blocks = [2, 2, 4, 4, 1].map((count, b) => Array.from({ length: count }, (_, i) => conv(b + 1, i + 1)));
    const contentTarget = tf.transpose(tf.tensor(targets.content.data, [...targets.content.shape]), [0, 2, 3, 1]);
    const gramTargets = STYLE_TAPS.map((n) => tf.tensor(targets.grams.get(n)!.data, [...targets.grams.get(n)!.shape]));
    const tfGram = (f: tf.Tensor4D) => {
      const [, h, w, c] = f.shape;
      const rows = tf.reshape(f, [h * w, c]);
      return tf.div(tf.matMul(rows, rows, true, false), c * h * w);
    };
    const lossOf = (nchw: tf.Tensor): tf.Scalar => {
      // RGB → BGR minus the ImageNet mean.
      let y = tf.sub(tf.reverse(tf.transpose(nchw, [0, 2, 3, 1]), 3), tf.tensor1d(CAFFE_MEAN_BGR)) as tf.Tensor4D;
      let loss = tf.scalar(0);
      let style = 0;
      blocks.forEach((layers, b) => {
        if (b > 0) y = pooling === 'max' ? tf.maxPool(y, 2, 2, 'valid') : tf.avgPool(y, 2, 2, 'valid');
        layers.forEach((layer, i) => {
          y = tf.relu(tf.add(tf.conv2d(y, layer.w, 1, 'same'), layer.b)) as tf.Tensor4D;
          if (i === 0) {
            loss = tf.add(loss, tf.mul(tf.sum(tf.square(tf.sub(tfGram(y), gramTargets[style]))), weights.style[style]));
            style++;
          }
          if (b === 3 && i === 1) loss = tf.add(loss, tf.mul(tf.sum(tf.square(tf.sub(y, contentTarget))), weights.content));
        });
      });
      return loss;
    };
    const { value, grad: dx } = tf.valueAndGrad(lossOf)(tf.tensor(image.data, [...image.shape]));
    return { loss: value.dataSync()[0], dx: dx.dataSync() as Float32Array };
  });
}

