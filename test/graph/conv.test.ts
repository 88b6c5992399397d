/**
 * conv2d and convTranspose2d against TF.js (NHWC / HWIO, TensorFlow SAME) and a direct JS loop,
 * including the automatic space-to-depth and sub-pixel lowerings (conv-lowering.ts): 'auto' must
 * agree with 'direct' and with the oracle, and must really emit the lowered ONNX nodes.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { F, Graph, type Dim } from '../../src/graph/index.js';
import type { ConvLowering, Padding2d } from '../../src/graph/ops/conv.js';
import { randomTensor } from '../helpers/random.js';
import { assertClose, emittedNodes, emittedOpTypes, runGraph, runSingle } from '../helpers/run-graph.js';
import { depthToSpaceBlock } from '../../src/graph/ops/conv-lowering.js';
import { hwioFromOihw, hwoiFromIohw, nchwFromNhwc, nhwcFromNchw, tf } from '../helpers/tf-cpu.js';

interface Dense {
  readonly data: Float32Array;
  readonly shape: readonly number[];
}

interface ConvCase {
  readonly x: Dense;
  readonly weight: Dense;
  readonly bias?: Dense;
  readonly stride: number;
  readonly padding: 'same' | Padding2d;
  readonly lowering?: ConvLowering;
  /** Input shape as declared in the graph (symbols allowed); defaults to x's shape. */
  readonly declared?: readonly Dim[];
}

function convGraph(c: ConvCase): Graph {
  const g = new Graph();
  const x = g.input('x', c.declared ?? c.x.shape);
  const w = g.param('w', c.weight);
  const b = c.bias ? g.param('b', c.bias) : undefined;
  g.output(F.conv2d(x, w, b, { stride: c.stride, padding: c.padding, lowering: c.lowering }), 'y');
  return g;
}

async function runConv(c: ConvCase, g = convGraph(c)): Promise<Float32Array> {
  const y = await runSingle(g, { x: { data: c.x.data, dims: c.x.shape } });
  assert.deepEqual(y.dims, expectedConvDims(c), 'output dims');
  return y.data;
}

function expectedConvDims(c: ConvCase): number[] {
  const [n, , h, w] = c.x.shape;
  const [cout, , kh, kw] = c.weight.shape;
  if (c.padding === 'same') return [n, cout, Math.ceil(h / c.stride), Math.ceil(w / c.stride)];
  const [t, l, b, r] = c.padding;
  return [n, cout, Math.floor((h + t + b - kh) / c.stride) + 1, Math.floor((w + l + r - kw) / c.stride) + 1];
}

function tfConv(c: ConvCase): Float32Array {
  return tf.tidy(() => {
    const pad = c.padding === 'same'
      ? 'same' as const
      : [[0, 0], [c.padding[0], c.padding[2]], [c.padding[1], c.padding[3]], [0, 0]] as [[number, number], [number, number], [number, number], [number, number]];
    let y = tf.conv2d(nhwcFromNchw(c.x.data, c.x.shape), hwioFromOihw(c.weight.data, c.weight.shape), c.stride, pad);
    if (c.bias) y = tf.add(y, tf.tensor1d(c.bias.data));
    return nchwFromNhwc(y);
  });
}

function convCase(seed: number, x: readonly number[], weight: readonly number[], stride: number, padding: 'same' | Padding2d, withBias: boolean): ConvCase {
  return {
    x: randomTensor(x, seed),
    weight: randomTensor(weight, seed + 1),
    bias: withBias ? randomTensor([weight[0]], seed + 2) : undefined,
    stride,
    padding,
  };
}

const conv2dCases: { name: string; x: number[]; k: number; cout: number; stride: number; padding: 'same' | Padding2d }[] = [
  { name: '1x1 same stride 1', x: [1, 3, 6, 5], k: 1, cout: 4, stride: 1, padding: 'same' },
  { name: '1x1 same stride 2, odd', x: [1, 3, 7, 8], k: 1, cout: 4, stride: 2, padding: 'same' },
  { name: '3x3 same stride 1, even', x: [2, 3, 8, 8], k: 3, cout: 5, stride: 1, padding: 'same' },
  { name: '3x3 same stride 1, odd', x: [1, 3, 7, 9], k: 3, cout: 5, stride: 1, padding: 'same' },
  { name: '3x3 same stride 2, even (asymmetric SAME)', x: [2, 3, 8, 10], k: 3, cout: 4, stride: 2, padding: 'same' },
  { name: '3x3 same stride 2, odd', x: [1, 3, 7, 9], k: 3, cout: 4, stride: 2, padding: 'same' },
  { name: '3x3 same stride 2, mixed', x: [1, 3, 8, 7], k: 3, cout: 4, stride: 2, padding: 'same' },
  { name: '4x4 same stride 1 (even kernel, SAME_UPPER)', x: [1, 3, 6, 7], k: 4, cout: 4, stride: 1, padding: 'same' },
  { name: '9x9 same stride 1, odd', x: [1, 3, 9, 11], k: 9, cout: 3, stride: 1, padding: 'same' },
  { name: '9x9 same stride 1, even (lowered)', x: [1, 3, 10, 12], k: 9, cout: 3, stride: 1, padding: 'same' },
  { name: '9x9 same stride 2, even', x: [1, 3, 12, 10], k: 9, cout: 8, stride: 2, padding: 'same' },
  { name: '3x3 explicit [0, 1, 2, 1]', x: [1, 3, 6, 7], k: 3, cout: 4, stride: 1, padding: [0, 1, 2, 1] },
  { name: '3x3 explicit [1, 0, 0, 1] stride 2', x: [1, 3, 8, 9], k: 3, cout: 4, stride: 2, padding: [1, 0, 0, 1] },
  { name: '3x3 valid', x: [1, 3, 6, 5], k: 3, cout: 4, stride: 1, padding: [0, 0, 0, 0] },
  { name: '9x9 explicit [4, 4, 4, 4] (lowered)', x: [1, 3, 8, 8], k: 9, cout: 3, stride: 1, padding: [4, 4, 4, 4] },
  { name: '9x9 explicit [4, 3, 4, 5]', x: [1, 2, 8, 8], k: 9, cout: 3, stride: 1, padding: [4, 3, 4, 5] },
];

for (const [i, c] of conv2dCases.entries()) {
  for (const withBias of [false, true]) {
    test(`conv2d ${c.name}${withBias ? ' + bias' : ''} matches tf.conv2d`, async () => {
      const cc = convCase(100 + 10 * i, c.x, [c.cout, c.x[1], c.k, c.k], c.stride, c.padding, withBias);
      assertClose(await runConv(cc), tfConv(cc), { label: c.name });
    });
  }
}

test('conv2d SAME at stride 2 is asymmetric: symmetric padding would give a different answer', async () => {
  const c = convCase(7, [1, 2, 8, 8], [3, 2, 3, 3], 2, 'same', false);
  const ours = await runConv(c);
  const symmetric = tfConv({ ...c, padding: [1, 1, 1, 1] });
  assert.ok(ours.some((v, i) => Math.abs(v - symmetric[i]) > 1e-3), 'SAME must put the odd padding pixel at the end');
});

// ---- space-to-depth lowering of conv2d ----

/** Whether `g` exports a depth-to-space (which conv-lowering writes as a one-hot ConvTranspose). */
const emitsDepthToSpace = (g: Graph): boolean => emittedNodes(g).some((n) => depthToSpaceBlock(n) !== null);
/** Whether `g` exports a ConvTranspose that is a real transposed convolution. */
const emitsConvTranspose = (g: Graph): boolean => emittedNodes(g).some((n) => n.opType === 'ConvTranspose' && depthToSpaceBlock(n) === null);
const hasLowering = (g: Graph): boolean => emittedOpTypes(g).includes('SpaceToDepth') && emitsDepthToSpace(g);

for (const { k, cout, x, bias, padding } of [
  { k: 5, cout: 1, x: [1, 3, 6, 8], bias: true, padding: [2, 2, 2, 2] as const },
  { k: 7, cout: 2, x: [2, 4, 8, 6], bias: false, padding: 'same' as const },
  { k: 9, cout: 3, x: [1, 3, 10, 8], bias: true, padding: 'same' as const },
  { k: 9, cout: 4, x: [1, 2, 4, 4], bias: false, padding: [4, 4, 4, 4] as const },
  { k: 9, cout: 3, x: [1, 3, 2, 2], bias: true, padding: 'same' as const },
]) {
  test(`conv2d lowering, even ${x[2]}x${x[3]}, ${k}x${k} → ${cout}${bias ? ' + bias' : ''}: auto emits SpaceToDepth and agrees with direct and tf`, async () => {
    const c = convCase(k * 31 + cout, x, [cout, x[1], k, k], 1, padding, bias);
    const auto = convGraph({ ...c, lowering: 'auto' });
    const direct = convGraph({ ...c, lowering: 'direct' });
    assert.ok(hasLowering(auto), `auto emitted ${emittedOpTypes(auto).join(', ')}`);
    assert.deepEqual(emittedOpTypes(direct), ['Conv']);
    const expected = tfConv(c);
    assertClose(await runConv(c, auto), expected, { label: 'auto' });
    assertClose(await runConv(c, direct), expected, { label: 'direct' });
  });
}

test('conv2d lowering is the default: no lowering attribute behaves as auto', () => {
  const c = convCase(1, [1, 3, 8, 8], [3, 3, 9, 9], 1, 'same', true);
  assert.ok(hasLowering(convGraph(c)));
});

for (const { why, x, weight, stride, padding, declared } of [
  { why: 'odd height', x: [1, 3, 7, 8], weight: [3, 3, 9, 9], stride: 1, padding: 'same' as const },
  { why: 'odd width', x: [1, 3, 8, 9], weight: [3, 3, 9, 9], stride: 1, padding: [4, 4, 4, 4] as const },
  { why: 'symbolic H, W (not provably even)', x: [1, 3, 8, 8], weight: [3, 3, 9, 9], stride: 1, padding: 'same' as const, declared: [1, 3, 'H', 'W'] },
  { why: '5 output channels', x: [1, 3, 8, 8], weight: [5, 3, 9, 9], stride: 1, padding: 'same' as const },
  { why: 'kernel 3', x: [1, 3, 8, 8], weight: [3, 3, 3, 3], stride: 1, padding: 'same' as const },
  { why: 'stride 2', x: [1, 3, 8, 8], weight: [3, 3, 9, 9], stride: 2, padding: 'same' as const },
  { why: 'asymmetric padding', x: [1, 3, 8, 8], weight: [3, 3, 9, 9], stride: 1, padding: [4, 4, 4, 3] as const },
]) {
  test(`conv2d lowering does not apply with ${why}: auto emits one plain Conv that matches tf`, async () => {
    const c: ConvCase = { ...convCase(55, x, weight, stride, padding, true), declared };
    const g = convGraph({ ...c, lowering: 'auto' });
    assert.deepEqual(emittedOpTypes(g), ['Conv']);
    assertClose(await runConv(c, g), tfConv(c), { label: why });
  });
}

test('conv2d lowering applies to symbolic sizes known to be even (after a 2x upsample) and runs at two sizes', async () => {
  const g = new Graph();
  const x = g.input('x', ['N', 3, 'H', 'W']);
  const weight = randomTensor([3, 3, 9, 9], 77);
  const bias = randomTensor([3], 78);
  const up = F.upsampleNearest(x, 2);
  g.output(F.conv2d(up, g.param('w', weight), g.param('b', bias), { stride: 1, padding: 'same' }), 'y');
  assert.ok(hasLowering(g));
  for (const dims of [[1, 3, 3, 5], [2, 3, 4, 2]]) {
    const input = randomTensor(dims, dims[2] * 10 + dims[3]);
    const y = await runSingle(g, { x: { data: input.data, dims } });
    assert.deepEqual(y.dims, [dims[0], 3, dims[2] * 2, dims[3] * 2]);
    const expected = tf.tidy(() => {
      const nhwc = tf.image.resizeNearestNeighbor(nhwcFromNchw(input.data, dims), [dims[2] * 2, dims[3] * 2]);
      return nchwFromNhwc(tf.add(tf.conv2d(nhwc, hwioFromOihw(weight.data, weight.shape), 1, 'same'), tf.tensor1d(bias.data)));
    });
    assertClose(y.data, expected, { label: `${dims}` });
  }
});

test('conv2d lowering holds for weights fed as graph inputs (trained weights)', async () => {
  const c = convCase(91, [1, 3, 8, 6], [2, 3, 7, 7], 1, 'same', true);
  const g = new Graph();
  const x = g.input('x', c.x.shape);
  const w = g.input('w', c.weight.shape);
  const b = g.input('b', c.bias!.shape);
  g.output(F.conv2d(x, w, b, { stride: 1, padding: 'same' }), 'y');
  assert.ok(hasLowering(g));
  const y = await runSingle(g, {
    x: { data: c.x.data, dims: c.x.shape },
    w: { data: c.weight.data, dims: c.weight.shape },
    b: { data: c.bias!.data, dims: c.bias!.shape },
  });
  assertClose(y.data, tfConv(c));
});

// ---- convTranspose2d ----

interface ConvTransposeCase {
  readonly x: Dense;
  /** [Cin, Cout, K, K] */
  readonly weight: Dense;
  readonly bias?: Dense;
  readonly stride: number;
  readonly pads: Padding2d;
}

/** The definition: every input pixel scatters its kernel into the full output, then `pads` are cropped. */
function convTransposeLoop(c: ConvTransposeCase): { data: Float32Array; dims: number[] } {
  const [n, cin, h, w] = c.x.shape;
  const [, cout, kh, kw] = c.weight.shape;
  const [top, left, bottom, right] = c.pads;
  const oh = (h - 1) * c.stride + kh - top - bottom;
  const ow = (w - 1) * c.stride + kw - left - right;
  const out = new Float32Array(n * cout * oh * ow);
  for (let b = 0; b < n; b++) {
    for (let co = 0; co < cout; co++) out.fill(c.bias?.data[co] ?? 0, (b * cout + co) * oh * ow, (b * cout + co + 1) * oh * ow);
    for (let ci = 0; ci < cin; ci++) {
      for (let i = 0; i < h; i++) {
        for (let j = 0; j < w; j++) {
          const v = c.x.data[((b * cin + ci) * h + i) * w + j];
          for (let co = 0; co < cout; co++) {
            for (let p = 0; p < kh; p++) {
              const y = i * c.stride + p - top;
              if (y < 0 || y >= oh) continue;
              for (let q = 0; q < kw; q++) {
                const x = j * c.stride + q - left;
                if (x < 0 || x >= ow) continue;
                out[((b * cout + co) * oh + y) * ow + x] += v * c.weight.data[((ci * cout + co) * kh + p) * kw + q];
              }
            }
          }
        }
      }
    }
  }
  return { data: out, dims: [n, cout, oh, ow] };
}

/** TF's conv2d_transpose with 'same' padding: output = stride × input. */
function tfConvTransposeSame(c: ConvTransposeCase): Float32Array {
  const [n, , h, w] = c.x.shape;
  const cout = c.weight.shape[1];
  return tf.tidy(() => {
    let y = tf.conv2dTranspose(nhwcFromNchw(c.x.data, c.x.shape), hwoiFromIohw(c.weight.data, c.weight.shape),
      [n, h * c.stride, w * c.stride, cout], c.stride, 'same');
    if (c.bias) y = tf.add(y, tf.tensor1d(c.bias.data));
    return nchwFromNhwc(y);
  });
}

function convTransposeGraph(c: ConvTransposeCase, lowering: ConvLowering | undefined, declared?: readonly Dim[]): Graph {
  const g = new Graph();
  const x = g.input('x', declared ?? c.x.shape);
  const b = c.bias ? g.param('b', c.bias) : undefined;
  g.output(F.convTranspose2d(x, g.param('w', c.weight), b, { stride: c.stride, pads: c.pads, lowering }), 'y');
  return g;
}

async function runConvTranspose(g: Graph, x: Dense): Promise<{ data: Float32Array; dims: readonly number[] }> {
  return runSingle(g, { x: { data: x.data, dims: x.shape } });
}

const transposeCases: { name: string; x: number[]; cout: number; k: number; stride: number; pads: Padding2d; tfSame: boolean; subPixel: boolean }[] = [
  { name: 'k3 s2 pads [0,0,1,1] (TF SAME, 2x)', x: [1, 4, 4, 4], cout: 3, k: 3, stride: 2, pads: [0, 0, 1, 1], tfSame: true, subPixel: true },
  { name: 'k3 s2 pads [0,0,1,1], odd and batched', x: [2, 3, 3, 5], cout: 2, k: 3, stride: 2, pads: [0, 0, 1, 1], tfSame: true, subPixel: true },
  { name: 'k4 s2 pads [1,1,1,1] (PyTorch style)', x: [1, 4, 5, 4], cout: 3, k: 4, stride: 2, pads: [1, 1, 1, 1], tfSame: true, subPixel: true },
  { name: 'k5 s3 pads [1,1,1,1] (3x)', x: [1, 2, 3, 4], cout: 2, k: 5, stride: 3, pads: [1, 1, 1, 1], tfSame: false, subPixel: true },
  { name: 'k3 s1 pads [1,1,1,1]', x: [1, 4, 5, 6], cout: 3, k: 3, stride: 1, pads: [1, 1, 1, 1], tfSame: true, subPixel: false },
  { name: 'k3 s2 pads [1,1,1,1] (2H-1, not lowered)', x: [1, 4, 4, 5], cout: 3, k: 3, stride: 2, pads: [1, 1, 1, 1], tfSame: false, subPixel: false },
  { name: 'k3 s2 pads [0,1,1,0] (top ≠ left, not lowered)', x: [1, 3, 4, 3], cout: 2, k: 3, stride: 2, pads: [0, 1, 1, 0], tfSame: false, subPixel: false },
];

for (const [i, c] of transposeCases.entries()) {
  for (const withBias of [false, true]) {
    test(`convTranspose2d ${c.name}${withBias ? ' + bias' : ''}: auto and direct match the definition${c.tfSame ? ' and tf.conv2dTranspose' : ''}`, async () => {
      const seed = 500 + 10 * i;
      const cc: ConvTransposeCase = {
        x: randomTensor(c.x, seed),
        weight: randomTensor([c.x[1], c.cout, c.k, c.k], seed + 1),
        bias: withBias ? randomTensor([c.cout], seed + 2) : undefined,
        stride: c.stride,
        pads: c.pads,
      };
      const reference = convTransposeLoop(cc);
      if (c.tfSame) assertClose(tfConvTransposeSame(cc), reference.data, { label: 'tf vs loop (oracles disagree)' });
      const auto = convTransposeGraph(cc, 'auto');
      const direct = convTransposeGraph(cc, 'direct');
      assert.deepEqual(emittedOpTypes(direct), ['ConvTranspose']);
      assert.equal(emitsDepthToSpace(auto), c.subPixel, `auto emitted ${emittedOpTypes(auto).join(', ')}`);
      assert.equal(emitsConvTranspose(auto), !c.subPixel);
      assert.deepEqual(auto.outputs[0].value.shape, reference.dims, 'inferred shape');
      for (const [label, g] of [['auto', auto], ['direct', direct]] as const) {
        const y = await runConvTranspose(g, cc.x);
        assert.deepEqual(y.dims, reference.dims, `${label} dims`);
        assertClose(y.data, reference.data, { label });
      }
    });
  }
}

test('convTranspose2d with symbolic N, H, W: one exported model runs at two sizes (sub-pixel lowering)', async () => {
  const cc: ConvTransposeCase = {
    x: randomTensor([1, 4, 1, 1], 0),
    weight: randomTensor([4, 3, 3, 3], 901),
    bias: randomTensor([3], 902),
    stride: 2,
    pads: [0, 0, 1, 1],
  };
  const g = convTransposeGraph(cc, undefined, ['N', 4, 'H', 'W']);
  assert.deepEqual(g.outputs[0].value.shape, ['N', 3, 'H*2', 'W*2']);
  assert.ok(emitsDepthToSpace(g));
  for (const dims of [[1, 4, 3, 4], [2, 4, 5, 2]]) {
    const x = randomTensor(dims, dims[0] * 100 + dims[2] * 10 + dims[3]);
    const reference = convTransposeLoop({ ...cc, x });
    const y = await runConvTranspose(g, x);
    assert.deepEqual(y.dims, reference.dims);
    assertClose(y.data, reference.data, { label: `${dims}` });
    assertClose(y.data, tfConvTransposeSame({ ...cc, x }), { label: `${dims} vs tf` });
  }
});

test('convTranspose2d with symbolic H, W and no lowering (2H-1) runs at two sizes', async () => {
  const cc: ConvTransposeCase = { x: randomTensor([1, 2, 1, 1], 0), weight: randomTensor([2, 2, 3, 3], 911), stride: 2, pads: [1, 1, 1, 1] };
  const g = convTransposeGraph(cc, 'auto', [1, 2, 'H', 'W']);
  assert.deepEqual(g.outputs[0].value.shape, [1, 2, 'H*2-1', 'W*2-1']);
  for (const dims of [[1, 2, 3, 4], [1, 2, 6, 2]]) {
    const x = randomTensor(dims, dims[2] * 10 + dims[3]);
    const reference = convTransposeLoop({ ...cc, x });
    const y = await runConvTranspose(g, x);
    assert.deepEqual(y.dims, reference.dims);
    assertClose(y.data, reference.data);
  }
});

test("the export option lowering: 'direct' writes every op as its plain operator, with the same result", async () => {
  const g = new Graph();
  const x = g.input('x', [1, 4, 'H', 'W']);
  const up = F.convTranspose2d(x, g.param('wt', randomTensor([4, 8, 3, 3], 921)), g.param('bt', randomTensor([8], 922)), { stride: 2, pads: [0, 0, 1, 1] });
  const spread = F.depthToSpace(up, 2);
  g.output(F.conv2d(spread, g.param('w', randomTensor([3, 2, 9, 9], 923)), undefined, { stride: 1, padding: 'same' }), 'y');
  const lowered = emittedOpTypes(g);
  assert.ok(lowered.includes('SpaceToDepth') && !lowered.includes('DepthToSpace'), `auto emitted ${lowered.join(', ')}`);
  assert.deepEqual(emittedOpTypes(g, { lowering: 'direct' }), ['ConvTranspose', 'DepthToSpace', 'Conv']);
  const feeds = { x: { data: randomTensor([1, 4, 3, 5], 924).data, dims: [1, 4, 3, 5] } };
  const [auto, direct] = [(await runGraph(g, feeds)).y, (await runGraph(g, feeds, { lowering: 'direct' })).y];
  assert.deepEqual(direct.dims, [1, 3, 12, 20]);
  assert.deepEqual(auto.dims, direct.dims);
  assertClose(auto.data, direct.data);
});
