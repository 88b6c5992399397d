/** Tensor layout changes between frameworks (TensorFlow HWIO ↔ ONNX OIHW and friends). */
import type { Tensor } from '../graph/index.js';

/** Permutes the axes of a row-major tensor: output axis i is input axis `perm[i]`. */
export function permute(t: Tensor, perm: readonly number[]): Tensor {
  const { shape, data } = t;
  const rank = shape.length;
  if (perm.length !== rank || [...perm].sort().some((p, i) => p !== i)) {
    throw new RangeError(`permute: [${perm.join(', ')}] is not a permutation of ${rank} axes`);
  }
  const outShape = perm.map((p) => shape[p]);
  const inStrides = new Array<number>(rank);
  for (let i = rank - 1, s = 1; i >= 0; i--) { inStrides[i] = s; s *= shape[i]; }
  const strides = perm.map((p) => inStrides[p]);
  const out = new Float32Array(data.length);
  const index = new Array<number>(rank).fill(0);
  let src = 0;
  for (let o = 0; o < out.length; o++) {
    out[o] = data[src];
    // Odometer increment over the output shape, tracking the source offset incrementally.
    for (let axis = rank - 1; axis >= 0; axis--) {
      index[axis]++;
      src += strides[axis];
      if (index[axis] < outShape[axis]) break;
      src -= strides[axis] * outShape[axis];
      index[axis] = 0;
    }
  }
  return { data: out, shape: outShape };
}

/** TensorFlow conv2d filter [h, w, in, out] → ONNX Conv weight [out, in, h, w]. */
export const hwioToOihw = (t: Tensor): Tensor => permute(t, [3, 2, 0, 1]);

/** TensorFlow conv2d_transpose filter [h, w, out, in] → ONNX ConvTranspose weight [in, out, h, w]. */
export const hwoiToIohw = (t: Tensor): Tensor => permute(t, [3, 2, 0, 1]);
