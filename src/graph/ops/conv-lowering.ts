/**
 * Faster ONNX formulations of convolutions that onnxruntime's CPU kernels handle poorly, measured
 * on the lengstrom network at 256² (onnxruntime-node 1.30, 2 threads):
 *
 * - stride-2 ConvTranspose 64→32: 33 ms; as one Conv with 2x2 kernels producing the 4 output
 *   phases as channels, then depth-to-space ("sub-pixel convolution"): 8 ms.
 * - 9x9 Conv 32→3 (few output channels leave the SIMD blocks mostly empty): 49 ms; on a
 *   SpaceToDepth(2) input with 12 output channels, then depth-to-space: 9 ms.
 * - DepthToSpace itself (a generic 6-D transpose in onnxruntime) as a grouped ConvTranspose with
 *   one-hot kernels: 256→64 channels at 160x120, 10.6 ms → 6.1 ms (emitDepthToSpace).
 *
 * The convolution lowerings rearrange the weights inside the graph (Gather from a zero-padded
 * flat kernel), so they hold for trained weights that are graph inputs, and onnxruntime folds the
 * rearrangement away when the weights are initializers.
 */
import type { onnx } from 'onnx-proto';
import type { Emitter } from '../op.js';

/** Per-axis tap table: for each phase r and sub-kernel tap j, the kernel index or -1. */
interface PhaseTaps {
  readonly taps: number; // sub-kernel size T
  readonly padBefore: number;
  readonly padAfter: number;
  readonly index: number[][]; // [phase][j] → kernel index or -1
}

/**
 * Builds the tap table from `offset(r, k)`: the input offset (in sub-sampled positions) that kernel
 * tap k reads for output phase r, or null when tap k does not contribute to phase r.
 */
function phaseTaps(phases: number, kernel: number, offset: (r: number, k: number) => number | null): PhaseTaps {
  let min = Infinity;
  let max = -Infinity;
  for (let r = 0; r < phases; r++) {
    for (let k = 0; k < kernel; k++) {
      const d = offset(r, k);
      if (d !== null) { min = Math.min(min, d); max = Math.max(max, d); }
    }
  }
  const taps = max - min + 1;
  const index = Array.from({ length: phases }, () => new Array<number>(taps).fill(-1));
  for (let r = 0; r < phases; r++) {
    for (let k = 0; k < kernel; k++) {
      const d = offset(r, k);
      if (d !== null) index[r][d - min] = k;
    }
  }
  return { taps, padBefore: -min, padAfter: max, index };
}

const DEPTH_TO_SPACE_KERNEL = 'depth_to_space_onehot';

/**
 * DepthToSpace in ONNX's CRD order ([N, C·b², H, W] → [N, C, H·b, W·b], channel c·b² + i·b + j
 * goes to offset (i, j) of each b×b block), written as a ConvTranspose with stride b, one group
 * per output channel and one-hot b×b kernels: each input value lands in exactly one output pixel,
 * so the result is an exact copy. onnxruntime runs this form faster than its DepthToSpace.
 */
export function emitDepthToSpace(e: Emitter, input: string, output: string, channels: number, block: number): void {
  const b2 = block * block;
  const kernel = new Float32Array(channels * b2 * b2);
  for (let c = 0; c < channels; c++) for (let r = 0; r < b2; r++) kernel[(c * b2 + r) * b2 + r] = 1;
  const weight = e.floats({ data: kernel, shape: [channels * b2, 1, block, block] }, DEPTH_TO_SPACE_KERNEL);
  e.node('ConvTranspose', [input, weight], [output], { group: channels, kernel_shape: [block, block], strides: [block, block] });
}

/** The block size when `node` is a depth-to-space written by emitDepthToSpace, else null. */
export function depthToSpaceBlock(node: onnx.INodeProto): number | null {
  if (node.opType !== 'ConvTranspose' || !node.input?.[1]?.startsWith(`${DEPTH_TO_SPACE_KERNEL}__`)) return null;
  const strides = node.attribute?.find((a) => a.name === 'strides')?.ints;
  return strides ? Number(strides[0]) : null;
}

/** Repeats each bias value `times` times: [C] → [C·times], matching CRD channel order. */
function repeatBias(e: Emitter, bias: string, channels: number, times: number): string {
  const column = e.temp('b_col');
  e.node('Reshape', [bias, e.int64s([channels, 1], 'shape')], [column]);
  const expanded = e.temp('b_expanded');
  e.node('Expand', [column, e.int64s([channels, times], 'shape')], [expanded]);
  const flat = e.temp('b_repeated');
  e.node('Reshape', [expanded, e.int64s([channels * times], 'shape')], [flat]);
  return flat;
}

/**
 * ConvTranspose (weights [Cin, Cout, K, K], stride s, crop `before` at the start) as Conv +
 * depth-to-space. Valid when the output is exactly s × the input, i.e. K − before − after = s.
 *
 * Each of the s² output phases is its own Conv holding only the taps that reach it (for K = 3,
 * s = 2: 4, 2, 2 and 1 of the 2x2 sub-kernel, 9 taps instead of 16). The phases are stacked along H,
 * which is a free reshape away from depth-to-space's channel order [N, Cout·s², h, w]. Measured on
 * the lengstrom network at 640x480 (deconv1, 128→64 at 160x120): one Conv with every phase 13.1 ms,
 * split 8.4 ms + 0.8 ms to stack.
 */
export function emitSubPixelConvTranspose(
  e: Emitter, inputs: readonly string[], output: string,
  cin: number, cout: number, kernel: number, stride: number, before: number,
): void {
  // Output o = s·q + r reads input q + d through tap k when s·(q + d) + k − before = o.
  const axis = phaseTaps(stride, kernel, (r, k) => ((r + before - k) % stride === 0 ? (r + before - k) / stride : null));
  // The sub-kernel taps [lo, hi] that phase r uses on one axis. Tap k = r + before always reaches
  // phase r with offset 0, so each phase reads from d_lo ≤ 0 to d_hi ≥ 0 and the padding that keeps
  // the input's size, −d_lo before and d_hi after, is never negative.
  const reach = axis.index.map((taps) => {
    const used = taps.flatMap((k, j) => (k >= 0 ? [j] : []));
    const lo = Math.min(...used);
    const hi = Math.max(...used);
    return { lo, hi, padBefore: axis.padBefore - lo, padAfter: hi - axis.padBefore };
  });
  const zero = kernel * kernel;
  const phases: string[] = [];
  for (let rh = 0; rh < stride; rh++) {
    for (let rw = 0; rw < stride; rw++) {
      const [h, w] = [reach[rh], reach[rw]];
      const table: number[] = [];
      for (let jh = h.lo; jh <= h.hi; jh++) {
        for (let jw = w.lo; jw <= w.hi; jw++) {
          const [kh, kw] = [axis.index[rh][jh], axis.index[rw][jw]];
          table.push(kh < 0 || kw < 0 ? zero : kh * kernel + kw);
        }
      }
      const [th, tw] = [h.hi - h.lo + 1, w.hi - w.lo + 1];
      // [Cin, Cout, th·tw] → [Cout, Cin, th·tw] → [Cout, Cin, th, tw]
      const gathered = gatherKernel(e, inputs[1], cin, cout, kernel, e.int64s(table, 'taps'));
      const transposed = e.temp('w_phase_t');
      e.node('Transpose', [gathered], [transposed], { perm: [1, 0, 2] });
      const weight = e.temp('w_phase');
      e.node('Reshape', [transposed, e.int64s([cout, cin, th, tw], 'shape')], [weight]);
      const phase = e.temp('phase');
      e.node('Conv', [inputs[0], weight, ...inputs.slice(2, 3)], [phase], {
        kernel_shape: [th, tw],
        pads: [h.padBefore, w.padBefore, h.padAfter, w.padAfter],
      });
      phases.push(phase);
    }
  }
  const stacked = e.temp('phases_stacked');
  e.node('Concat', phases, [stacked], { axis: 2 });
  const channels = e.temp('phases');
  e.node('Reshape', [stacked, e.int64s([0, cout * stride * stride, -1, 0], 'shape')], [channels]);
  emitDepthToSpace(e, channels, output, cout, stride);
}

/**
 * Stride-1 Conv with symmetric padding `pad` (weights [Cout, Cin, K, K]) computed on a
 * SpaceToDepth(b) input with b²·Cout output channels, then depth-to-space. Needs H and W
 * divisible by b.
 */
export function emitSpaceToDepthConv(
  e: Emitter, inputs: readonly string[], output: string,
  cin: number, cout: number, kernel: number, pad: number, block: number,
): void {
  // Output o = b·q + r reads input b·m + t with m = q + d when b·q + r + k − pad = b·(q + d) + t.
  // Per axis, an output phase r and an input phase t combine into one phase index r·b + t.
  const axis = phaseTaps(block * block, kernel, (rt, k) => {
    const r = Math.floor(rt / block);
    const t = rt % block;
    const n = r + k - pad - t;
    return n % block === 0 ? n / block : null;
  });
  const T = axis.taps;
  const zero = kernel * kernel;
  const table: number[] = [];
  // Order [rh, rw, th, tw, jh, jw] so that the gathered axes read [r = rh·b + rw, t = th·b + tw].
  for (let rh = 0; rh < block; rh++) {
    for (let rw = 0; rw < block; rw++) {
      for (let th = 0; th < block; th++) {
        for (let tw = 0; tw < block; tw++) {
          for (let jh = 0; jh < T; jh++) {
            for (let jw = 0; jw < T; jw++) {
              const kh = axis.index[rh * block + th][jh];
              const kw = axis.index[rw * block + tw][jw];
              table.push(kh < 0 || kw < 0 ? zero : kh * kernel + kw);
            }
          }
        }
      }
    }
  }
  const b2 = block * block;
  const taps = e.int64s(table, 'taps', [b2, b2, T * T]);
  // [Cout, Cin, r, t, T²] → [Cout, r, t, Cin, T²] → [Cout·b², b²·Cin, T, T]
  const gathered = gatherKernel(e, inputs[1], cout, cin, kernel, taps);
  const transposed = e.temp('w_s2d_t');
  e.node('Transpose', [gathered], [transposed], { perm: [0, 2, 3, 1, 4] });
  const weight = e.temp('w_s2d');
  e.node('Reshape', [transposed, e.int64s([cout * b2, b2 * cin, T, T], 'shape')], [weight]);
  const bias = inputs[2] ? [repeatBias(e, inputs[2], cout, b2)] : [];
  const blocks = e.temp('s2d');
  e.node('SpaceToDepth', [inputs[0]], [blocks], { blocksize: block });
  const phases = e.temp('phases');
  e.node('Conv', [blocks, weight, ...bias], [phases], {
    kernel_shape: [T, T],
    pads: [axis.padBefore, axis.padBefore, axis.padAfter, axis.padAfter],
  });
  emitDepthToSpace(e, phases, output, cout, block);
}

/**
 * Rearranges a kernel: `w` reshaped to [A, B, K·K] with a zero appended, gathered along the last
 * axis by `taps` (entries K·K pick the zero) → [A, B, ...taps' shape].
 */
function gatherKernel(e: Emitter, w: string, a: number, b: number, kernel: number, taps: string): string {
  const flat = e.temp('w_flat');
  e.node('Reshape', [w, e.int64s([a, b, kernel * kernel], 'shape')], [flat]);
  const padded = e.temp('w_padded');
  e.node('Pad', [flat, e.int64s([0, 0, 0, 0, 0, 1], 'pads')], [padded], { mode: 'constant' });
  const gathered = e.temp('w_gathered');
  e.node('Gather', [padded, taps], [gathered], { axis: 2 });
  return gathered;
}
