/**
 * Padding, cropping and resolution changes: pad2d (constant / reflect / edge), crop2d,
 * upsampleNearest, depthToSpace (ONNX CRD order) and spaceToDepth, against TF.js and JS loops,
 * with symbolic sizes run at more than one size from the same exported model.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { F, Graph, ops, type Dim, type Value } from '../../src/graph/index.js';
import type { Padding2d } from '../../src/graph/ops/conv.js';
import { randomTensor } from '../helpers/random.js';
import { assertClose, emittedNodes, runSingle } from '../helpers/run-graph.js';
import { depthToSpaceBlock } from '../../src/graph/ops/conv-lowering.js';
import { nchwFromNhwc, nhwcFromNchw, tf } from '../helpers/tf-cpu.js';

type Dims4 = [number, number, number, number];

/** Builds x → build(x) with `declared` input dims, runs it at `dims`, checks the output dims. */
async function runUnary(declared: readonly Dim[], dims: Dims4, seed: number, build: (x: Value) => Value): Promise<{ x: Float32Array; y: Float32Array; dims: readonly number[] }> {
  const g = new Graph();
  g.output(build(g.input('x', declared)), 'y');
  const x = randomTensor(dims, seed);
  const y = await runSingle(g, { x: { data: x.data, dims } });
  return { x: x.data, y: y.data, dims: y.dims };
}

/** Index of an NCHW element. */
const at = (d: readonly number[], n: number, c: number, h: number, w: number): number => ((n * d[1] + c) * d[2] + h) * d[3] + w;

/** Pads with `source(i, size)` choosing the input index for an output index i (relative to the input origin). */
function padLoop(x: Float32Array, d: Dims4, [t, l, b, r]: Padding2d, source: (i: number, size: number) => number | null, value = 0): Float32Array {
  const od: Dims4 = [d[0], d[1], d[2] + t + b, d[3] + l + r];
  const out = new Float32Array(od.reduce((p, q) => p * q, 1));
  for (let n = 0; n < d[0]; n++) {
    for (let c = 0; c < d[1]; c++) {
      for (let h = 0; h < od[2]; h++) {
        for (let w = 0; w < od[3]; w++) {
          const sh = source(h - t, d[2]);
          const sw = source(w - l, d[3]);
          out[at(od, n, c, h, w)] = sh === null || sw === null ? value : x[at(d, n, c, sh, sw)];
        }
      }
    }
  }
  return out;
}

const edge = (i: number, size: number): number => Math.min(size - 1, Math.max(0, i));
const inside = (i: number, size: number): number | null => (i >= 0 && i < size ? i : null);

// ---- pad2d ----

test('pad2d constant with a value matches tf.pad and a JS loop, at two sizes of one model', async () => {
  const pads: Padding2d = [1, 2, 3, 0];
  for (const dims of [[1, 2, 3, 4], [2, 2, 5, 2]] as Dims4[]) {
    const { x, y, dims: out } = await runUnary(['N', 2, 'H', 'W'], dims, dims[2], (v) => {
      const p = F.pad2d(v, pads, 'constant', -7.5);
      assert.deepEqual(p.shape, ['N', 2, 'H+4', 'W+2']);
      return p;
    });
    assert.deepEqual(out, [dims[0], 2, dims[2] + 4, dims[3] + 2]);
    assertClose(y, padLoop(x, dims, pads, inside, -7.5));
    const expected = tf.tidy(() => tf.pad(tf.tensor4d(x, dims), [[0, 0], [0, 0], [1, 3], [2, 0]], -7.5).dataSync() as Float32Array);
    assertClose(y, expected);
  }
});

test('pad2d constant defaults to zero', async () => {
  const dims: Dims4 = [1, 1, 2, 3];
  const { x, y } = await runUnary(dims, dims, 3, (v) => F.pad2d(v, [1, 1, 1, 1], 'constant'));
  assertClose(y, padLoop(x, dims, [1, 1, 1, 1], inside, 0));
});

for (const [pads, dims] of [
  [[1, 1, 1, 1], [1, 3, 4, 5]],
  [[0, 2, 3, 1], [2, 2, 5, 4]],
  [[3, 3, 3, 3], [1, 1, 4, 4]], // the largest reflection a size of 4 allows
] as [Padding2d, Dims4][]) {
  test(`pad2d reflect [${pads}] on ${dims.join('x')} matches tf.mirrorPad('reflect')`, async () => {
    const { x, y, dims: out } = await runUnary(dims, dims, pads[1] + 10, (v) => F.pad2d(v, pads, 'reflect'));
    assert.deepEqual(out, [dims[0], dims[1], dims[2] + pads[0] + pads[2], dims[3] + pads[1] + pads[3]]);
    const expected = tf.tidy(() =>
      tf.mirrorPad(tf.tensor4d(x, dims), [[0, 0], [0, 0], [pads[0], pads[2]], [pads[1], pads[3]]], 'reflect').dataSync() as Float32Array);
    assertClose(y, expected);
  });
}

test('pad2d reflect on symbolic sizes runs at two sizes', async () => {
  for (const dims of [[1, 3, 4, 6], [1, 3, 7, 3]] as Dims4[]) {
    const { x, y } = await runUnary([1, 3, 'H', 'W'], dims, 20 + dims[2], (v) => F.pad2d(v, [2, 1, 2, 1], 'reflect'));
    const expected = tf.tidy(() => tf.mirrorPad(tf.tensor4d(x, dims), [[0, 0], [0, 0], [2, 2], [1, 1]], 'reflect').dataSync() as Float32Array);
    assertClose(y, expected);
  }
});

for (const [pads, dims] of [
  [[1, 1, 1, 1], [1, 2, 3, 3]],
  [[2, 0, 1, 4], [2, 3, 4, 2]],
  [[3, 2, 3, 2], [1, 1, 1, 1]],
] as [Padding2d, Dims4][]) {
  test(`pad2d edge [${pads}] on ${dims.join('x')} repeats the border (JS loop)`, async () => {
    const { x, y } = await runUnary(dims, dims, 30 + pads[0], (v) => F.pad2d(v, pads, 'edge'));
    assertClose(y, padLoop(x, dims, pads, edge));
  });
}

// ---- crop2d ----

function cropLoop(x: Float32Array, d: Dims4, [t, l, b, r]: Padding2d): Float32Array {
  const od: Dims4 = [d[0], d[1], d[2] - t - b, d[3] - l - r];
  const out = new Float32Array(od.reduce((p, q) => p * q, 1));
  for (let n = 0; n < od[0]; n++) {
    for (let c = 0; c < od[1]; c++) {
      for (let h = 0; h < od[2]; h++) for (let w = 0; w < od[3]; w++) out[at(od, n, c, h, w)] = x[at(d, n, c, h + t, w + l)];
    }
  }
  return out;
}

test('crop2d [1, 2, 3, 4] on [N, 3, H, W]: one model, two sizes', async () => {
  for (const dims of [[1, 3, 6, 9], [2, 3, 8, 7]] as Dims4[]) {
    const { x, y, dims: out } = await runUnary(['N', 3, 'H', 'W'], dims, dims[3], (v) => {
      const c = F.crop2d(v, [1, 2, 3, 4]);
      assert.deepEqual(c.shape, ['N', 3, 'H-4', 'W-6']);
      return c;
    });
    assert.deepEqual(out, [dims[0], 3, dims[2] - 4, dims[3] - 6]);
    assertClose(y, cropLoop(x, dims, [1, 2, 3, 4]));
  }
});

for (const crop of [[1, 0, 0, 2], [0, 0, 0, 0], [0, 3, 2, 0]] as Padding2d[]) {
  test(`crop2d [${crop}] with zero sides keeps those edges (symbolic)`, async () => {
    const dims: Dims4 = [1, 2, 5, 6];
    const { x, y, dims: out } = await runUnary([1, 2, 'H', 'W'], dims, 40, (v) => F.crop2d(v, crop));
    assert.deepEqual(out, [1, 2, 5 - crop[0] - crop[2], 6 - crop[1] - crop[3]]);
    assertClose(y, cropLoop(x, dims, crop));
  });
}

test('crop2d undoes pad2d (constant, reflect, edge) at run time', async () => {
  const dims: Dims4 = [1, 3, 5, 4];
  for (const mode of ['constant', 'reflect', 'edge'] as const) {
    const { x, y } = await runUnary(['N', 3, 'H', 'W'], dims, 50, (v) => F.crop2d(F.pad2d(v, [2, 1, 3, 2], mode, 9), [2, 1, 3, 2]));
    assert.deepEqual(y, x, mode);
  }
});

// ---- upsampleNearest ----

for (const scale of [1, 2, 3]) {
  test(`upsampleNearest x${scale} matches tf.image.resizeNearestNeighbor (no align corners, no half-pixel centres) at two sizes`, async () => {
    for (const dims of [[1, 3, 2, 3], [2, 2, 3, 1]] as Dims4[]) {
      const { x, y, dims: out } = await runUnary(['N', dims[1], 'H', 'W'], dims, scale * 7 + dims[2], (v) => {
        const u = F.upsampleNearest(v, scale);
        assert.deepEqual(u.shape, ['N', dims[1], scale === 1 ? 'H' : `H*${scale}`, scale === 1 ? 'W' : `W*${scale}`]);
        return u;
      });
      assert.deepEqual(out, [dims[0], dims[1], dims[2] * scale, dims[3] * scale]);
      const expected = tf.tidy(() =>
        nchwFromNhwc(tf.image.resizeNearestNeighbor(nhwcFromNchw(x, dims), [dims[2] * scale, dims[3] * scale], false, false)));
      assertClose(y, expected);
      // And the definition: output pixel (h, w) copies input (floor(h / s), floor(w / s)).
      const od = [dims[0], dims[1], dims[2] * scale, dims[3] * scale];
      for (let h = 0; h < od[2]; h++) {
        for (let w = 0; w < od[3]; w++) assert.equal(y[at(od, dims[0] - 1, 1, h, w)], x[at(dims, dims[0] - 1, 1, Math.floor(h / scale), Math.floor(w / scale))]);
      }
    }
  });
}

// ---- depthToSpace / spaceToDepth ----

/** ONNX DepthToSpace, mode CRD: out[n, c, h·b + i, w·b + j] = in[n, c·b² + i·b + j, h, w]. */
function depthToSpaceCrd(x: Float32Array, d: Dims4, b: number): Float32Array {
  const od: Dims4 = [d[0], d[1] / (b * b), d[2] * b, d[3] * b];
  const out = new Float32Array(x.length);
  for (let n = 0; n < d[0]; n++) {
    for (let c = 0; c < od[1]; c++) {
      for (let h = 0; h < d[2]; h++) {
        for (let w = 0; w < d[3]; w++) {
          for (let i = 0; i < b; i++) {
            for (let j = 0; j < b; j++) out[at(od, n, c, h * b + i, w * b + j)] = x[at(d, n, c * b * b + i * b + j, h, w)];
          }
        }
      }
    }
  }
  return out;
}

/** ONNX SpaceToDepth (block-major): out[n, (i·b + j)·C + c, h, w] = in[n, c, h·b + i, w·b + j]. */
function spaceToDepthLoop(x: Float32Array, d: Dims4, b: number): Float32Array {
  const od: Dims4 = [d[0], d[1] * b * b, d[2] / b, d[3] / b];
  const out = new Float32Array(x.length);
  for (let n = 0; n < d[0]; n++) {
    for (let c = 0; c < d[1]; c++) {
      for (let h = 0; h < od[2]; h++) {
        for (let w = 0; w < od[3]; w++) {
          for (let i = 0; i < b; i++) {
            for (let j = 0; j < b; j++) out[at(od, n, (i * b + j) * d[1] + c, h, w)] = x[at(d, n, c, h * b + i, w * b + j)];
          }
        }
      }
    }
  }
  return out;
}

/** Reorders channels c·b² + r (CRD) → r·C + c (TF's DCR), so tf.depthToSpace can serve as oracle. */
function crdToDcrChannels(x: Float32Array, d: Dims4, b: number): Float32Array {
  const cOut = d[1] / (b * b);
  const out = new Float32Array(x.length);
  const plane = d[2] * d[3];
  for (let n = 0; n < d[0]; n++) {
    for (let c = 0; c < cOut; c++) {
      for (let r = 0; r < b * b; r++) {
        const from = (n * d[1] + c * b * b + r) * plane;
        out.set(x.subarray(from, from + plane), (n * d[1] + r * cOut + c) * plane);
      }
    }
  }
  return out;
}

for (const [dims, block] of [[[1, 12, 2, 3], 2], [[2, 18, 2, 2], 3], [[1, 4, 3, 1], 2]] as [Dims4, number][]) {
  test(`depthToSpace ${dims.join('x')} block ${block} emits CRD order (JS loop; tf.depthToSpace after a DCR channel reorder)`, async () => {
    const g = new Graph();
    const out = F.depthToSpace(g.input('x', ['N', dims[1], 'H', 'W']), block);
    assert.deepEqual(out.shape, ['N', dims[1] / block ** 2, `H*${block}`, `W*${block}`]);
    g.output(out, 'y');
    const nodes = emittedNodes(g);
    assert.deepEqual(nodes.map((n) => depthToSpaceBlock(n)), [block], 'one depth-to-space node');
    const x = randomTensor(dims, 60 + block);
    const y = await runSingle(g, { x: { data: x.data, dims } });
    assert.deepEqual(y.dims, [dims[0], dims[1] / block ** 2, dims[2] * block, dims[3] * block]);
    assert.deepEqual(y.data, depthToSpaceCrd(x.data, dims, block), 'a copy: every value exact');
    const viaTf = tf.tidy(() => nchwFromNhwc(tf.depthToSpace(nhwcFromNchw(crdToDcrChannels(x.data, dims, block), dims) as tf.Tensor4D, block)));
    assertClose(y.data, viaTf, { label: 'tf' });
    if (dims[1] > block * block) {
      const dcr = tf.tidy(() => nchwFromNhwc(tf.depthToSpace(nhwcFromNchw(x.data, dims) as tf.Tensor4D, block)));
      assert.ok(y.data.some((v, i) => v !== dcr[i]), 'with several output channels CRD differs from DCR');
    }
  });
}

/** TensorFlow's space_to_depth (NHWC) by its definition; tfjs-core has no op of its own for it. */
function tfSpaceToDepth(x: tf.Tensor4D, b: number): tf.Tensor4D {
  const [n, h, w, c] = x.shape;
  return tf.reshape(tf.transpose(tf.reshape(x, [n, h / b, b, w / b, b, c]), [0, 1, 3, 2, 4, 5]), [n, h / b, w / b, b * b * c]);
}

for (const [dims, block] of [[[1, 3, 4, 6], 2], [[2, 2, 6, 3], 3]] as [Dims4, number][]) {
  test(`spaceToDepth ${dims.join('x')} block ${block} matches TensorFlow's space_to_depth and a JS loop`, async () => {
    const g = new Graph();
    const out = g.apply(ops.spaceToDepth, [g.input('x', dims)], { blockSize: block });
    assert.deepEqual(out.shape, [dims[0], dims[1] * block ** 2, dims[2] / block, dims[3] / block]);
    g.output(out, 'y');
    const x = randomTensor(dims, 70 + block);
    const y = await runSingle(g, { x: { data: x.data, dims } });
    assertClose(y.data, spaceToDepthLoop(x.data, dims, block), { label: 'loop' });
    assertClose(y.data, tf.tidy(() => nchwFromNhwc(tfSpaceToDepth(nhwcFromNchw(x.data, dims), block))), { label: 'tf' });
  });
}

test('spaceToDepth after depthToSpace: identity for one output channel, a CRD→DCR channel permutation otherwise', async () => {
  for (const dims of [[1, 4, 3, 2], [1, 12, 2, 2]] as Dims4[]) {
    const g = new Graph();
    const x = g.input('x', dims);
    g.output(g.apply(ops.spaceToDepth, [F.depthToSpace(x, 2)], { blockSize: 2 }), 'y');
    const data = randomTensor(dims, 80 + dims[1]);
    const y = await runSingle(g, { x: { data: data.data, dims } });
    assert.deepEqual(y.dims, dims);
    assert.deepEqual(y.data, crdToDcrChannels(data.data, dims, 2));
    if (dims[1] === 4) assert.deepEqual(y.data, data.data);
  }
});
