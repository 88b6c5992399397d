/**
 * TF.js (tfjs-core on the CPU backend) as an independent oracle for graph ops. TF.js is NHWC with
 * HWIO conv filters; pastiche is NCHW with OIHW (conv) and IOHW (transposed conv) weights, so these
 * helpers convert at the boundary and nowhere else.
 */
import { tf } from './tf-reference.js';

export { tf };

/** An NCHW array as an NHWC tf tensor. */
export function nhwcFromNchw(data: Float32Array, dims: readonly number[]): tf.Tensor4D {
  return tf.tidy(() => tf.transpose(tf.tensor4d(data, dims as [number, number, number, number]), [0, 2, 3, 1]));
}

/** An NHWC tf tensor as an NCHW array. */
export function nchwFromNhwc(t: tf.Tensor): Float32Array {
  return tf.tidy(() => tf.transpose(t, [0, 3, 1, 2]).dataSync() as Float32Array);
}

/** Conv weights [Cout, Cin, K, K] (OIHW) as a TF filter [K, K, Cin, Cout] (HWIO). */
export function hwioFromOihw(data: Float32Array, dims: readonly number[]): tf.Tensor4D {
  return tf.tidy(() => tf.transpose(tf.tensor4d(data, dims as [number, number, number, number]), [2, 3, 1, 0]));
}

/** Transposed-conv weights [Cin, Cout, K, K] as TF's conv2dTranspose filter [K, K, Cout, Cin]. */
export function hwoiFromIohw(data: Float32Array, dims: readonly number[]): tf.Tensor4D {
  return tf.tidy(() => tf.transpose(tf.tensor4d(data, dims as [number, number, number, number]), [2, 3, 1, 0]));
}
