/**
 * An independent implementation of the lengstrom transformer network with TF.js ops, straight
 * from the TensorFlow checkpoint's variables and TensorFlow semantics: NHWC, 'same' padding,
 * conv2dTranspose with [h, w, out, in] filters. It shares no code with pastiche's graph builder
 * or weight mapping. Tests run it on the CPU backend (the default here); the benchmark on wasm.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import * as tf from '@tensorflow/tfjs-core';
import '@tensorflow/tfjs-backend-cpu';
// tfjs-core's CommonJS build registers no gradients; the union package's build does.
import '@tensorflow/tfjs';

await tf.setBackend('cpu');
export { tf };

export interface TfVariable {
  readonly data: Float32Array;
  readonly shape: readonly number[];
}

/** Reads a checkpoint dump's raw TensorFlow variables without pastiche's readers. */
export function readTfVariables(dir: string): Map<string, TfVariable> {
  const manifest = JSON.parse(readFileSync(join(dir, 'manifest.json'), 'utf8')) as Record<string, { filename: string; shape: number[] }>;
  const vars = new Map<string, TfVariable>();
  for (const [name, { filename, shape }] of Object.entries(manifest)) {
    const bytes = readFileSync(join(dir, filename));
    vars.set(name, { data: new Float32Array(bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + bytes.byteLength)), shape });
  }
  return vars;
}

/** Runs the network on an NHWC image (0..255); returns NHWC output (0..255). */
export function lengstromReference(
  vars: ReadonlyMap<string, TfVariable>,
  image: Float32Array,
  height: number,
  width: number,
  /** Deliberate mistakes, to show that a comparison would catch them. */
  mistakes: { epsilon?: number; symmetricStridePadding?: boolean; flipDeconvFilter?: boolean } = {},
): Float32Array {
  const epsilon = mistakes.epsilon ?? 1e-3;
  return tf.tidy(() => {
    const v = (i: number): tf.Tensor => {
      const t = vars.get(i === 0 ? 'Variable' : `Variable_${i}`);
      if (!t) throw new Error(`variable ${i} missing`);
      return tf.tensor(t.data, [...t.shape]);
    };
    const instanceNorm = (x: tf.Tensor4D, shift: tf.Tensor, scale: tf.Tensor): tf.Tensor4D => {
      const { mean, variance } = tf.moments(x, [1, 2], true);
      return tf.add(tf.mul(scale, tf.div(tf.sub(x, mean), tf.sqrt(tf.add(variance, epsilon)))), shift) as tf.Tensor4D;
    };
    const conv = (x: tf.Tensor4D, i: number, stride: number, relu: boolean): tf.Tensor4D => {
      const pad: 'same' | [[number, number], [number, number], [number, number], [number, number]] =
        stride === 2 && mistakes.symmetricStridePadding ? [[0, 0], [1, 1], [1, 1], [0, 0]] : 'same';
      const y = tf.conv2d(x, v(i) as tf.Tensor4D, stride, pad);
      const n = instanceNorm(y, v(i + 1), v(i + 2));
      return relu ? tf.relu(n) : n;
    };
    const deconv = (x: tf.Tensor4D, i: number): tf.Tensor4D => {
      const [b, h, w] = x.shape;
      const filter = (mistakes.flipDeconvFilter ? tf.reverse(v(i), [0, 1]) : v(i)) as tf.Tensor4D;
      const y = tf.conv2dTranspose(x, filter, [b, h * 2, w * 2, filter.shape[2]], 2, 'same');
      return tf.relu(instanceNorm(y, v(i + 1), v(i + 2)));
    };
    let x = tf.tensor4d(image, [1, height, width, 3]);
    x = conv(x, 0, 1, true);
    x = conv(x, 3, 2, true);
    x = conv(x, 6, 2, true);
    for (let b = 0; b < 5; b++) {
      const base = 9 + 6 * b;
      x = tf.add(x, conv(conv(x, base, 1, true), base + 3, 1, false));
    }
    x = deconv(x, 39);
    x = deconv(x, 42);
    x = conv(x, 45, 1, false);
    const out = tf.clipByValue(tf.add(tf.mul(tf.tanh(x), 150), 127.5), 0, 255);
    return out.dataSync() as Float32Array;
  });
}
