/**
 * Shape inference with concrete and symbolic dimensions, and the errors of bad calls: a RangeError
 * naming the op for shapes and attributes that do not fit, a plain Error for misuse of the Graph.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { F, Graph, formatShape, ops, toOnnxBytes, toOnnxModel, type Dim, type OpDef, type Shape, type Value } from '../../src/graph/index.js';
import { randomTensor } from '../helpers/random.js';

/** Output shape of one application of `op` on fresh inputs of the given shapes. */
function inferred<A>(op: OpDef<A>, shapes: readonly Shape[], attrs: A): Shape {
  const g = new Graph();
  return g.apply(op, shapes.map((s, i) => g.input(`in${i}`, s)), attrs).shape;
}

function throwsRange(fn: () => unknown, message: RegExp): void {
  assert.throws(fn, (error: unknown) => {
    assert.ok(error instanceof RangeError, `expected a RangeError, got ${String(error)}`);
    assert.match(error.message, message);
    return true;
  });
}

const none = {} as Record<string, never>;
const sym = ['N', 3, 'H', 'W'];

test('conv2d shapes: SAME is ceil(size / stride), explicit padding floor((size + pads − k) / stride) + 1', () => {
  const cases: [Shape, Shape, ops.Conv2dAttrs, Shape][] = [
    [sym, [8, 3, 3, 3], { stride: 1, padding: 'same' }, ['N', 8, 'H', 'W']],
    [sym, [8, 3, 3, 3], { stride: 2, padding: 'same' }, ['N', 8, 'ceil(H/2)', 'ceil(W/2)']],
    [sym, [8, 3, 9, 9], { stride: 1, padding: [4, 4, 4, 4] }, ['N', 8, 'H', 'W']],
    [sym, [8, 3, 3, 3], { stride: 1, padding: [1, 1, 1, 1] }, ['N', 8, 'H', 'W']],
    [sym, [8, 3, 3, 3], { stride: 1, padding: [0, 0, 0, 0] }, ['N', 8, 'H-2', 'W-2']],
    [sym, [8, 3, 3, 3], { stride: 2, padding: [1, 1, 1, 1] }, ['N', 8, 'floor((H-1)/2)+1', 'floor((W-1)/2)+1']],
    [[1, 3, 7, 8], [8, 3, 3, 3], { stride: 2, padding: 'same' }, [1, 8, 4, 4]],
    [[1, 3, 7, 8], [8, 3, 3, 3], { stride: 2, padding: [1, 1, 1, 1] }, [1, 8, 4, 4]],
    [[2, 3, 6, 7], [4, 3, 3, 3], { stride: 1, padding: [0, 1, 2, 1] }, [2, 4, 6, 7]],
    [[1, 3, 5, 6], [4, 3, 3, 3], { stride: 1, padding: [0, 0, 0, 0] }, [1, 4, 3, 4]],
  ];
  for (const [x, w, attrs, expected] of cases) {
    assert.deepEqual(inferred(ops.conv2d, [x, w], attrs), expected, `${x} * ${w} ${JSON.stringify(attrs)}`);
    assert.deepEqual(inferred(ops.conv2d, [x, w, [w[0]]], attrs), expected, 'with bias');
  }
});

test('convTranspose2d shapes: stride·size + k − pads − stride', () => {
  const cases: [Shape, Shape, ops.ConvTranspose2dAttrs, Shape][] = [
    [['N', 4, 'H', 'W'], [4, 3, 3, 3], { stride: 2, pads: [0, 0, 1, 1] }, ['N', 3, 'H*2', 'W*2']],
    [['N', 4, 'H', 'W'], [4, 3, 4, 4], { stride: 2, pads: [1, 1, 1, 1] }, ['N', 3, 'H*2', 'W*2']],
    [['N', 4, 'H', 'W'], [4, 3, 3, 3], { stride: 2, pads: [1, 1, 1, 1] }, ['N', 3, 'H*2-1', 'W*2-1']],
    [['N', 4, 'H', 'W'], [4, 3, 3, 3], { stride: 1, pads: [1, 1, 1, 1] }, ['N', 3, 'H', 'W']],
    [['N', 4, 'ceil(H/2)', 'W'], [4, 3, 3, 3], { stride: 2, pads: [0, 0, 1, 1] }, ['N', 3, 'ceil(H/2)*2', 'W*2']],
    [[1, 4, 5, 6], [4, 3, 3, 3], { stride: 2, pads: [0, 0, 1, 1] }, [1, 3, 10, 12]],
    [[1, 4, 5, 6], [4, 2, 3, 3], { stride: 2, pads: [0, 1, 1, 0] }, [1, 2, 10, 12]],
  ];
  for (const [x, w, attrs, expected] of cases) {
    assert.deepEqual(inferred(ops.convTranspose2d, [x, w], attrs), expected, `${x} ${JSON.stringify(attrs)}`);
  }
});

test('padded convs and pad-then-crop give back the same symbols, so residual adds type-check', () => {
  const g = new Graph();
  const x = g.input('x', [1, 3, 'H', 'W']);
  const down = F.conv2d(x, g.param('w1', randomTensor([3, 3, 3, 3], 1)), undefined, { stride: 1, padding: [1, 1, 1, 1] });
  assert.deepEqual(F.add(x, down).shape, [1, 3, 'H', 'W']);
  const padded = F.crop2d(F.pad2d(x, [4, 4, 4, 4], 'reflect'), [4, 4, 4, 4]);
  assert.deepEqual(padded.shape, [1, 3, 'H', 'W']);
  const valid = F.conv2d(F.pad2d(x, [1, 1, 1, 1], 'reflect'), g.param('w2', randomTensor([3, 3, 3, 3], 2)), undefined, { stride: 1, padding: [0, 0, 0, 0] });
  assert.deepEqual(F.add(valid, x).shape, [1, 3, 'H', 'W']);
});

test('shapes of the shape-preserving and resizing ops, concrete and symbolic', () => {
  assert.deepEqual(inferred(ops.instanceNorm, [sym, [3], [3]], { epsilon: 1e-5 }), sym);
  for (const op of [ops.relu, ops.tanh, ops.sigmoid]) assert.deepEqual(inferred(op, [sym], none), sym, op.type);
  assert.deepEqual(inferred(ops.clip, [sym], { min: 0, max: 255 }), sym);
  for (const op of [ops.add, ops.sub, ops.mul, ops.div]) {
    assert.deepEqual(inferred(op, [sym, []], none), sym);
    assert.deepEqual(inferred(op, [sym, [1, 3, 1, 1]], none), sym);
    assert.deepEqual(inferred(op, [[3, 1, 1], sym], none), sym);
    assert.deepEqual(inferred(op, [['N', 1, 'H', 'W'], [1, 3, 1, 1]], none), sym);
    assert.deepEqual(inferred(op, [[2, 1, 4], [3, 1]], none), [2, 3, 4]);
  }
  assert.deepEqual(inferred(ops.pad2d, [sym], { pads: [1, 2, 3, 4], mode: 'reflect' }), ['N', 3, 'H+4', 'W+6']);
  assert.deepEqual(inferred(ops.pad2d, [[1, 3, 5, 5]], { pads: [1, 2, 3, 4], mode: 'edge' }), [1, 3, 9, 11]);
  assert.deepEqual(inferred(ops.crop2d, [sym], { crop: [1, 2, 3, 4] }), ['N', 3, 'H-4', 'W-6']);
  assert.deepEqual(inferred(ops.crop2d, [sym], { crop: [0, 0, 0, 0] }), sym);
  assert.deepEqual(inferred(ops.crop2d, [[1, 3, 9, 11]], { crop: [1, 2, 3, 4] }), [1, 3, 5, 5]);
  assert.deepEqual(inferred(ops.upsampleNearest, [sym], { scale: 2 }), ['N', 3, 'H*2', 'W*2']);
  assert.deepEqual(inferred(ops.upsampleNearest, [[1, 3, 5, 6]], { scale: 3 }), [1, 3, 15, 18]);
  assert.deepEqual(inferred(ops.depthToSpace, [['N', 12, 'H', 'W']], { blockSize: 2 }), ['N', 3, 'H*2', 'W*2']);
  assert.deepEqual(inferred(ops.depthToSpace, [[1, 27, 2, 3]], { blockSize: 3 }), [1, 3, 6, 9]);
  assert.deepEqual(inferred(ops.spaceToDepth, [[1, 3, 'H', 8]], { blockSize: 2 }), [1, 12, 'floor(H/2)', 4]);
  assert.deepEqual(inferred(ops.spaceToDepth, [[2, 3, 6, 9]], { blockSize: 3 }), [2, 27, 2, 3]);
});

/** Evaluates a symbolic dim such as 'floor((H-1)/2)+1' at concrete sizes. */
function evalDim(d: Dim, env: Readonly<Record<string, number>>): number {
  if (typeof d === 'number') return d;
  const numeric = d.replace(/\b[A-Z]\w*\b/g, (name) => {
    if (!(name in env)) throw new Error(`unknown symbol ${name} in ${d}`);
    return String(env[name]);
  });
  assert.match(numeric, /^([\d+\-*/()]|ceil|floor)*$/, `unexpected terms in ${d}`);
  const expression = numeric.replace(/\b(ceil|floor)\(/g, 'Math.$1(');
  return Number(new Function(`return ${expression};`)());
}

const pipelines: [string, (x: Value) => Value][] = [
  ['conv2d k3 stride 2, pads [1, 1, 1, 1]', (x) => F.conv2d(x, param(x, [4, 3, 3, 3]), undefined, { stride: 2, padding: [1, 1, 1, 1] })],
  ['conv2d k3 stride 2, pads [0, 1, 2, 0]', (x) => F.conv2d(x, param(x, [4, 3, 3, 3]), undefined, { stride: 2, padding: [0, 1, 2, 0] })],
  ['edge pad, 2x upsample, SAME stride-2 conv', (x) =>
    F.conv2d(F.upsampleNearest(F.pad2d(x, [1, 1, 0, 0], 'edge'), 2), param(x, [3, 3, 3, 3]), undefined, { stride: 2, padding: 'same' })],
  ['two SAME stride-2 convs, two 2x transposed convs', (x) => {
    let y = x;
    for (let i = 0; i < 2; i++) y = F.conv2d(y, param(x, [3, 3, 3, 3]), undefined, { stride: 2, padding: 'same' });
    for (let i = 0; i < 2; i++) y = F.convTranspose2d(y, param(x, [3, 3, 3, 3]), undefined, { stride: 2, pads: [0, 0, 1, 1] });
    return y;
  }],
  ['crop, reflect pad, 5x5 valid conv', (x) =>
    F.conv2d(F.pad2d(F.crop2d(x, [1, 2, 3, 4]), [2, 2, 2, 2], 'reflect'), param(x, [3, 3, 5, 5]), undefined, { stride: 1, padding: [0, 0, 0, 0] })],
  ['transposed conv to 2H-1, conv stride 3 valid, 3x upsample', (x) =>
    F.upsampleNearest(F.conv2d(F.convTranspose2d(x, param(x, [3, 3, 3, 3]), undefined, { stride: 2, pads: [1, 1, 1, 1] }),
      param(x, [3, 3, 2, 2]), undefined, { stride: 3, padding: [0, 0, 0, 0] }), 3)],
];

function param(x: Value, shape: number[]): Value {
  return x.graph.param(`w${x.graph.params.length}`, randomTensor(shape, x.graph.params.length));
}

for (const [name, build] of pipelines) {
  test(`symbolic shapes agree with concrete ones at many sizes: ${name}`, () => {
    const g = new Graph();
    const symbolic = build(g.input('x', ['N', 3, 'H', 'W'])).shape;
    for (let h = 9; h <= 14; h++) {
      for (const w of [10, 13]) {
        const concrete = build(new Graph().input('x', [2, 3, h, w])).shape;
        assert.deepEqual(symbolic.map((d) => evalDim(d, { N: 2, H: h, W: w })), concrete, `${formatShape(symbolic)} at H=${h}, W=${w}`);
      }
    }
  });
}

// ---- bad calls ----

test('conv2d rejects mismatched channels, bad bias, bad ranks, too-large kernels and wrong arity', () => {
  const w = [4, 3, 3, 3];
  throwsRange(() => inferred(ops.conv2d, [[1, 5, 8, 8], w], { stride: 1, padding: 'same' }), /^conv2d: input has 5 channels but the weight expects 3$/);
  throwsRange(() => inferred(ops.conv2d, [sym, w, [3]], { stride: 1, padding: 'same' }), /^conv2d: bias must have shape \[4\] but has \[3\]$/);
  throwsRange(() => inferred(ops.conv2d, [[3, 8, 8], w], { stride: 1, padding: 'same' }), /^conv2d: input must be NCHW \(rank 4\)/);
  throwsRange(() => inferred(ops.conv2d, [sym, [4, 3, 3]], { stride: 1, padding: 'same' }), /^conv2d: weight must be rank 4/);
  throwsRange(() => inferred(ops.conv2d, [[1, 3, 2, 2], [4, 3, 5, 5]], { stride: 1, padding: [1, 1, 1, 1] }), /^conv2d: kernel 5 is larger than the padded input 4$/);
  throwsRange(() => inferred(ops.conv2d, [sym], { stride: 1, padding: 'same' }), /^conv2d: expected 2 to 3 inputs but received 1$/);
  throwsRange(() => inferred(ops.conv2d, [sym, w, [4], [4]], { stride: 1, padding: 'same' }), /^conv2d: expected 2 to 3 inputs but received 4$/);
});

test('convTranspose2d reads input channels from weight axis 0', () => {
  throwsRange(() => inferred(ops.convTranspose2d, [['N', 4, 'H', 'W'], [3, 4, 3, 3]], { stride: 2, pads: [0, 0, 1, 1] }),
    /^convTranspose2d: input has 4 channels but the weight expects 3$/);
  throwsRange(() => inferred(ops.convTranspose2d, [['N', 4, 'H', 'W'], [4, 3, 3, 3], [4]], { stride: 2, pads: [0, 0, 1, 1] }),
    /^convTranspose2d: bias must have shape \[3\]/);
});

test('instanceNorm rejects scale or bias of the wrong size, and non-NCHW input', () => {
  throwsRange(() => inferred(ops.instanceNorm, [sym, [4], [3]], { epsilon: 1e-3 }), /^instanceNorm: scale must have shape \[3\] but has \[4\]$/);
  throwsRange(() => inferred(ops.instanceNorm, [sym, [3], [1, 3]], { epsilon: 1e-3 }), /^instanceNorm: bias must have shape \[3\]/);
  throwsRange(() => inferred(ops.instanceNorm, [[3, 4, 4], [3], [3]], { epsilon: 1e-3 }), /^instanceNorm: input must be NCHW/);
  throwsRange(() => inferred(ops.instanceNorm, [sym, [3]], { epsilon: 1e-3 }), /^instanceNorm: expected 3 inputs but received 2$/);
});

test('binary ops reject shapes that do not broadcast, including different symbols', () => {
  for (const op of [ops.add, ops.sub, ops.mul, ops.div]) {
    throwsRange(() => inferred(op, [[1, 3, 4, 4], [1, 2, 4, 4]], none), new RegExp(`^${op.type}: shapes \\[1, 3, 4, 4\\] and \\[1, 2, 4, 4\\] do not broadcast$`));
    throwsRange(() => inferred(op, [sym, ['N', 3, 'W', 'H']], none), new RegExp(`^${op.type}: shapes .* do not broadcast$`));
    throwsRange(() => inferred(op, [sym, [5]], none), new RegExp(`^${op.type}: `));
    throwsRange(() => inferred(op, [sym], none), new RegExp(`^${op.type}: expected 2 inputs but received 1$`));
  }
});

test('unary ops and clip check their arity; clip checks min ≤ max', () => {
  for (const op of [ops.relu, ops.tanh, ops.sigmoid]) {
    throwsRange(() => inferred(op, [sym, sym], none), new RegExp(`^${op.type}: expected 1 inputs but received 2$`));
  }
  throwsRange(() => inferred(ops.clip, [sym], { min: 2, max: 1 }), /^clip: min 2 is greater than max 1$/);
  throwsRange(() => inferred(ops.clip, [sym], { min: Number.NaN, max: 1 }), /^clip: /);
});

test('pad2d rejects reflection wider than the input, negative or fractional pads', () => {
  throwsRange(() => inferred(ops.pad2d, [[1, 3, 3, 5]], { pads: [0, 0, 3, 0], mode: 'reflect' }), /^pad2d: reflection padding of 3 needs a size above 3 but the input has 3$/);
  throwsRange(() => inferred(ops.pad2d, [[1, 3, 8, 4]], { pads: [0, 4, 0, 0], mode: 'reflect' }), /^pad2d: reflection padding of 4/);
  assert.deepEqual(inferred(ops.pad2d, [[1, 3, 3, 5]], { pads: [0, 0, 3, 0], mode: 'edge' }), [1, 3, 6, 5], 'edge has no such limit');
  assert.deepEqual(inferred(ops.pad2d, [sym], { pads: [9, 9, 9, 9], mode: 'reflect' }), ['N', 3, 'H+18', 'W+18'], 'symbolic sizes are checked at run time');
  throwsRange(() => inferred(ops.pad2d, [sym], { pads: [-1, 0, 0, 0], mode: 'constant' }), /^pad2d: pads must be non-negative integers/);
  throwsRange(() => inferred(ops.pad2d, [sym], { pads: [0.5, 0, 0, 0], mode: 'constant' }), /^pad2d: pads must be non-negative integers/);
  throwsRange(() => inferred(ops.pad2d, [[3, 4, 4]], { pads: [1, 1, 1, 1], mode: 'constant' }), /^pad2d: input must be NCHW/);
});

test('crop2d rejects crops that leave nothing, and negative crops', () => {
  throwsRange(() => inferred(ops.crop2d, [[1, 3, 4, 8]], { crop: [2, 0, 2, 0] }), /^crop2d: cropping \[2, 0, 2, 0\] leaves nothing of \[1, 3, 4, 8\]$/);
  throwsRange(() => inferred(ops.crop2d, [[1, 3, 4, 8]], { crop: [0, 5, 0, 4] }), /^crop2d: cropping/);
  throwsRange(() => inferred(ops.crop2d, [sym], { crop: [0, -1, 0, 0] }), /^crop2d: crop must be non-negative integers/);
  throwsRange(() => inferred(ops.crop2d, [sym, sym], { crop: [0, 0, 0, 0] }), /^crop2d: expected 1 inputs but received 2$/);
});

test('resize ops reject bad scales, channel counts and spatial sizes', () => {
  throwsRange(() => inferred(ops.upsampleNearest, [sym], { scale: 1.5 }), /^upsampleNearest: scale must be a positive integer, got 1.5$/);
  throwsRange(() => inferred(ops.upsampleNearest, [sym], { scale: 0 }), /^upsampleNearest: scale must be a positive integer/);
  throwsRange(() => inferred(ops.depthToSpace, [[1, 6, 2, 2]], { blockSize: 2 }), /^depthToSpace: input \[1, 6, 2, 2\] must be NCHW with channels divisible by 4$/);
  throwsRange(() => inferred(ops.depthToSpace, [['N', 'C', 2, 2]], { blockSize: 2 }), /^depthToSpace: /);
  throwsRange(() => inferred(ops.spaceToDepth, [[1, 3, 5, 4]], { blockSize: 2 }), /^spaceToDepth: spatial size 5 is not a multiple of 2$/);
  throwsRange(() => inferred(ops.spaceToDepth, [[1, 3, 4]], { blockSize: 2 }), /^spaceToDepth: input \[1, 3, 4\] must be NCHW$/);
});

// ---- Graph misuse ----

test('Graph rejects duplicate names for inputs and parameters', () => {
  const g = new Graph();
  g.input('x', sym);
  assert.throws(() => g.input('x', sym), { name: 'Error', message: "Graph already has a value named 'x' (adding an input)" });
  assert.throws(() => g.param('x', randomTensor([1], 1)), { message: "Graph already has a value named 'x' (adding a parameter)" });
  g.param('w', randomTensor([2], 1));
  assert.throws(() => g.param('w', randomTensor([2], 1)), { message: /value named 'w'/ });
});

test('Graph gives constants and node outputs unique names', () => {
  const g = new Graph();
  const x = g.input('x', [2]);
  assert.equal(g.constant(randomTensor([2], 1), 'c').name, 'c');
  assert.equal(g.constant(randomTensor([2], 2), 'c').name, 'c_1');
  assert.equal(F.relu(x).name, 'relu');
  assert.equal(F.relu(x).name, 'relu_1');
  assert.equal(g.apply(ops.tanh, [x], none, 'x').name, 'x_1', 'a node never takes an input name');
});

test('Graph checks parameter and constant data against their shapes', () => {
  const g = new Graph();
  throwsRange(() => g.param('w', { data: new Float32Array(3), shape: [2, 2] }), /^w: shape \[2, 2\] needs 4 values but the data has 3$/);
  throwsRange(() => g.constant({ data: new Float32Array(4), shape: [2, 'K'] as never }), /^const: a tensor needs a concrete shape$/);
  assert.equal(g.scalar(2).shape.length, 0);
});

test('values from another graph are rejected by apply and output', () => {
  const a = new Graph();
  const b = new Graph();
  const x = a.input('x', sym);
  assert.throws(() => b.apply(ops.relu, [x], none), { name: 'Error', message: "relu: input 'x' belongs to another graph" });
  assert.throws(() => b.output(x, 'y'), { message: "output 'y' belongs to another graph" });
  const y = b.input('y', sym);
  assert.throws(() => F.add(y, x), { message: "add: input 'x' belongs to another graph" });
});

test('exporting a graph without outputs throws; getParam names what is missing', () => {
  const g = new Graph();
  F.relu(g.input('x', sym));
  assert.throws(() => toOnnxModel(g), { name: 'Error', message: /Graph has no outputs/ });
  assert.throws(() => toOnnxBytes(g), /Graph has no outputs/);
  assert.throws(() => g.getParam('nope'), { message: "Graph has no parameter named 'nope'" });
  const w = g.param('w', randomTensor([1], 1));
  assert.equal(g.getParam('w'), w);
});


test('conv2d and convTranspose2d reject non-positive or fractional strides and negative or fractional pads', () => {
    const w = [3, 3, 3, 3];
    throwsRange(() => inferred(ops.conv2d, [[1, 3, 8, 8], w], { stride: 0, padding: 'same' }), /^conv2d: .*stride/);
    throwsRange(() => inferred(ops.conv2d, [[1, 3, 8, 8], w], { stride: 1.5, padding: 'same' }), /^conv2d: .*stride/);
    throwsRange(() => inferred(ops.conv2d, [[1, 3, 8, 8], w], { stride: 1, padding: [-2, -2, 0, 0] }), /^conv2d: .*pad/);
    throwsRange(() => inferred(ops.conv2d, [[1, 3, 8, 8], w], { stride: 1, padding: [0.5, 0, 0, 0] }), /^conv2d: .*pad/);
    throwsRange(() => inferred(ops.convTranspose2d, [[1, 3, 8, 8], w], { stride: 0, pads: [0, 0, 0, 0] }), /^convTranspose2d: .*stride/);
    throwsRange(() => inferred(ops.convTranspose2d, [[1, 3, 2, 2], w], { stride: 1, pads: [3, 3, 3, 3] }), /^convTranspose2d: /);
    throwsRange(() => inferred(ops.convTranspose2d, [[1, 3, 2, 2], w], { stride: 3, pads: [-1, -1, 0, 0] }), /^convTranspose2d: .*pad/);
  });
