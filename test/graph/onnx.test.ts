/**
 * ONNX export: what the ModelProto holds (decoded with onnx-proto, independently of the writer):
 * opset and producer, inputs with dim_params for symbolic sizes, parameters as initializers,
 * metadata, dead code left out; and that the bytes load and run in onnxruntime.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import onnxProto, { type onnx } from 'onnx-proto';
import { F, Graph, OPSET, toOnnxBytes, toOnnxModel } from '../../src/graph/index.js';
import { loadModel } from '../../src/runtime/session.js';
import { randomTensor } from '../helpers/random.js';
import { assertClose, runGraph } from '../helpers/run-graph.js';

const { ModelProto, TensorProto } = onnxProto.onnx;

/** One conv network with a dead branch and an unused parameter. */
function sampleGraph(): { g: Graph; w: ReturnType<typeof randomTensor>; b: ReturnType<typeof randomTensor> } {
  const g = new Graph();
  const x = g.input('image', ['N', 3, 'H', 'W']);
  const w = randomTensor([4, 3, 3, 3], 1);
  const b = randomTensor([4], 2);
  g.param('unused', randomTensor([5], 3));
  F.tanh(x); // dead: no output depends on it
  g.output(F.relu(F.conv2d(x, g.param('w', w), g.param('b', b), { stride: 2, padding: 'same' })), 'features');
  g.output(F.mul(x, g.scalar(2)), 'doubled');
  return { g, w, b };
}

/** The graph of a model, which onnx-proto types as optional. */
function graphOf(model: onnx.IModelProto): onnx.IGraphProto & { node: onnx.INodeProto[]; input: onnx.IValueInfoProto[]; output: onnx.IValueInfoProto[]; initializer: onnx.ITensorProto[] } {
  const graph = model.graph;
  assert.ok(graph, 'model has no graph');
  return { ...graph, node: graph.node ?? [], input: graph.input ?? [], output: graph.output ?? [], initializer: graph.initializer ?? [] };
}

const dims = (info: onnx.IValueInfoProto): onnx.TensorShapeProto.IDimension[] => info.type?.tensorType?.shape?.dim ?? [];
const describe = (d: onnx.TensorShapeProto.IDimension): string | number | null =>
  d.dimParam ? d.dimParam : d.dimValue !== undefined && d.dimValue !== null ? Number(d.dimValue) : null;

function floatsOf(tensor: onnx.ITensorProto): Float32Array {
  assert.equal(tensor.dataType, TensorProto.DataType.FLOAT);
  return new Float32Array(Uint8Array.from(tensor.rawData!).buffer);
}

function int64sOf(tensor: onnx.ITensorProto): number[] {
  assert.equal(tensor.dataType, TensorProto.DataType.INT64);
  return [...new BigInt64Array(Uint8Array.from(tensor.rawData!).buffer)].map(Number);
}

test('the model declares opset 17, IR 8 and pastiche as producer', () => {
  const model = ModelProto.decode(toOnnxBytes(sampleGraph().g));
  assert.equal(OPSET, 17);
  assert.deepEqual(model.opsetImport.map((o) => [o.domain ?? '', Number(o.version)]), [['', 17]]);
  assert.equal(Number(model.irVersion), 8);
  assert.equal(model.producerName, 'pastiche');
});

test('graph inputs carry dim_param N, H, W for symbolic sizes and dim_value for fixed ones', () => {
  const model = ModelProto.decode(toOnnxBytes(sampleGraph().g));
  assert.deepEqual(graphOf(model).input.map((i) => i.name), ['image'], 'parameters are initializers, not inputs');
  const input = graphOf(model).input[0];
  assert.equal(input.type?.tensorType?.elemType, TensorProto.DataType.FLOAT);
  assert.deepEqual(dims(input).map(describe), ['N', 3, 'H', 'W']);
});

test('outputs keep input symbols as dim_params and leave derived sizes unnamed', () => {
  const model = ModelProto.decode(toOnnxBytes(sampleGraph().g));
  const outputs = Object.fromEntries(graphOf(model).output.map((o) => [o.name, dims(o).map(describe)]));
  assert.deepEqual(outputs, { features: ['N', 4, null, null], doubled: ['N', 3, 'H', 'W'] });
});

test('parameters become initializers holding their data; unused parameters and dead nodes are not exported', () => {
  const { g, w, b } = sampleGraph();
  const model = ModelProto.decode(toOnnxBytes(g));
  const initializers = new Map(graphOf(model).initializer.map((t) => [t.name!, t]));
  assert.ok(!initializers.has('unused'), 'unused parameter exported');
  assert.deepEqual(initializers.get('w')!.dims!.map(Number), [4, 3, 3, 3]);
  assert.deepEqual(floatsOf(initializers.get('w')!), w.data);
  assert.deepEqual(initializers.get('b')!.dims!.map(Number), [4]);
  assert.deepEqual(floatsOf(initializers.get('b')!), b.data);
  const scalar = [...initializers.values()].find((t) => t.name!.startsWith('scalar'))!;
  assert.deepEqual(scalar.dims, []);
  assert.deepEqual([...floatsOf(scalar)], [2]);
  const opTypes = graphOf(model).node.map((n) => n.opType);
  assert.ok(!opTypes.includes('Tanh'), `dead Tanh exported: ${opTypes.join(', ')}`);
  assert.deepEqual(opTypes.filter((t) => t !== 'Identity'), ['Conv', 'Relu', 'Mul']);
  // Every node input is produced by a node, an initializer or a graph input.
  const known = new Set([...graphOf(model).input.map((i) => i.name), ...initializers.keys(), ...graphOf(model).node.flatMap((n) => n.output)]);
  for (const node of graphOf(model).node) for (const input of node.input ?? []) assert.ok(input === '' || known.has(input), `${node.opType} reads unknown ${input}`);
});

test('metadata_props, doc string and graph name round-trip', () => {
  const metadata = { name: 'Mosaïque ✓', architecture: 'lengstrom', source: 'https://example.org/w', description: '' };
  const model = ModelProto.decode(toOnnxBytes(sampleGraph().g, { metadata, docString: 'a test model', graphName: 'net' }));
  assert.deepEqual(Object.fromEntries(model.metadataProps.map((p) => [p.key, p.value])), metadata);
  assert.equal(model.docString, 'a test model');
  assert.equal(graphOf(model).name, 'net');
  const plain = ModelProto.decode(toOnnxBytes(sampleGraph().g));
  assert.deepEqual(plain.metadataProps, []);
  assert.equal(graphOf(plain).name, 'pastiche');
});

test('export is deterministic: the same graph gives the same bytes', () => {
  const { g } = sampleGraph();
  assert.deepEqual(toOnnxBytes(g), toOnnxBytes(g));
  assert.deepEqual(toOnnxBytes(sampleGraph().g), toOnnxBytes(g));
});

test('int64 initializers written by emitters hold the op attributes (Pad pads, Slice starts/ends)', () => {
  const g = new Graph();
  const x = g.input('x', [1, 1, 'H', 'W']);
  g.output(F.crop2d(F.pad2d(x, [1, 2, 3, 4], 'constant', 0.5), [2, 0, 0, 3]), 'y');
  const model = toOnnxModel(g);
  const init = new Map(graphOf(model).initializer.map((t) => [t.name!, t]));
  const [pad, slice] = graphOf(model).node;
  assert.equal(pad.opType, 'Pad');
  assert.deepEqual(int64sOf(init.get(pad.input![1])!), [0, 0, 1, 2, 0, 0, 3, 4]);
  assert.deepEqual([...floatsOf(init.get(pad.input![2])!)], [0.5]);
  assert.equal(slice.opType, 'Slice');
  assert.deepEqual(int64sOf(init.get(slice.input![1])!), [2, 0]);
  assert.deepEqual(int64sOf(init.get(slice.input![2])!), [2 ** 62, -3], 'a side not cropped ends past the end');
  assert.deepEqual(int64sOf(init.get(slice.input![3])!), [2, 3]);
});

test('the exported bytes load in onnxruntime with the declared names and run at two sizes', async () => {
  const { g, w, b } = sampleGraph();
  const model = await loadModel(toOnnxBytes(g), { threads: 1 }, 'sample');
  assert.deepEqual(model.inputNames, ['image']);
  assert.deepEqual([...model.outputNames].sort(), ['doubled', 'features']);
  for (const [n, h, wd] of [[1, 5, 4], [2, 6, 7]]) {
    const image = randomTensor([n, 3, h, wd], h);
    const out = await runGraph(g, { image: { data: image.data, dims: image.shape } });
    assert.deepEqual(out.features.dims, [n, 4, Math.ceil(h / 2), Math.ceil(wd / 2)]);
    assertClose(out.doubled.data, image.data.map((v) => 2 * v));
    assert.ok(out.features.data.every((v) => v >= 0), 'relu output is non-negative');
  }
  assert.ok(w.data.length > 0 && b.data.length > 0);
});

test('one value can be exported under two output names, and an input can be an output', async () => {
  const g = new Graph();
  const x = g.input('x', [1, 2]);
  const y = F.relu(x);
  g.output(y, 'first');
  g.output(y, 'second');
  g.output(x, 'echo');
  const data = Float32Array.of(-1, 3);
  const out = await runGraph(g, { x: { data, dims: [1, 2] } });
  assert.deepEqual([...out.first.data], [0, 3]);
  assert.deepEqual([...out.second.data], [0, 3]);
  assert.deepEqual([...out.echo.data], [-1, 3]);
});

test('an output named like another value of the graph is rejected when the graph is built or exported', async () => {
    const g = new Graph();
    const x = g.input('x', [1, 2]);
    const hidden = F.relu(x); // named 'relu'
    assert.throws(() => {
      g.output(F.tanh(hidden), 'relu');
      toOnnxModel(g);
    }, /relu/);
    const twice = new Graph();
    const z = twice.input('z', [1, 2]);
    assert.throws(() => {
      twice.output(F.relu(z), 'y');
      twice.output(F.tanh(z), 'y');
      toOnnxModel(twice);
    }, /'y'/);
  });
