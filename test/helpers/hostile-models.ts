/**
 * Crafted ONNX files for the model door's tests, written with onnx-proto by hand (not with
 * pastiche's graph builder, which would never make them): external data, wrong output shapes,
 * unknown operators, NaN. Each maps an image input 'image' [N, 3, H, W] to an output 'out'.
 */
import onnxProto, { type onnx } from 'onnx-proto';

const { onnx: o } = onnxProto;
const FLOAT = o.TensorProto.DataType.FLOAT;
const { INT, TENSOR, GRAPH } = o.AttributeProto.AttributeType;

type Dim = number | string;

function valueInfo(name: string, dims: readonly Dim[], elemType = FLOAT): onnx.IValueInfoProto {
  return { name, type: { tensorType: { elemType, shape: { dim: dims.map((d) => (typeof d === 'string' ? { dimParam: d } : { dimValue: d })) } } } };
}

const scalar = (name: string, value: number): onnx.ITensorProto => ({ name, dataType: FLOAT, dims: [], floatData: [value] });

/** An ONNX file of `nodes` from 'image' [N, 3, H, W] to 'out' (declared `outDims`). */
export function imageModel(nodes: onnx.INodeProto[], initializer: onnx.ITensorProto[] = [], outDims: readonly Dim[] = ['N', 3, 'H', 'W']): Uint8Array {
  return o.ModelProto.encode({
    irVersion: 8,
    producerName: 'pastiche-tests',
    opsetImport: [{ domain: '', version: 17 }],
    graph: { name: 'crafted', node: nodes, initializer, input: [valueInfo('image', ['N', 3, 'H', 'W'])], output: [valueInfo('out', outDims)] },
  }).finish();
}

/** Where the crafted secret-reading tensor sits. */
export type SecretPlace = 'initializer' | 'constant' | 'subgraph';

/**
 * out = 0·image + the first three bytes of `location` (read as uint8, one per channel), so every
 * output pixel shows what onnxruntime read from the file. With `inline`, the same three bytes are
 * stored inside the model instead: the control that the model is otherwise a valid style model.
 */
export function secretModel(location: string, place: SecretPlace = 'initializer', inline?: Uint8Array): Uint8Array {
  const secret: onnx.ITensorProto = inline
    ? { name: 'secret', dataType: o.TensorProto.DataType.UINT8, dims: [1, 3, 1, 1], rawData: inline.subarray(0, 3) }
    : {
      name: 'secret', dataType: o.TensorProto.DataType.UINT8, dims: [1, 3, 1, 1],
      dataLocation: o.TensorProto.DataLocation.EXTERNAL,
      externalData: [{ key: 'location', value: location }, { key: 'offset', value: '0' }, { key: 'length', value: '3' }],
    };
  const constant = (output: string, value: onnx.ITensorProto): onnx.INodeProto => ({ opType: 'Constant', name: `const_${output}`, output: [output], attribute: [{ name: 'value', type: TENSOR, t: value }] });
  const tail: onnx.INodeProto[] = [
    { opType: 'Cast', input: ['secret_bytes'], output: ['secret_float'], attribute: [{ name: 'to', type: INT, i: FLOAT }] },
    { opType: 'Mul', input: ['image', 'zero'], output: ['blank'] },
    { opType: 'Add', input: ['blank', 'secret_float'], output: ['out'] },
  ];
  const initializer = [scalar('zero', 0)];
  if (place === 'initializer') {
    return imageModel([{ opType: 'Identity', input: ['secret'], output: ['secret_bytes'] }, ...tail], [{ ...secret }, ...initializer]);
  }
  if (place === 'constant') return imageModel([constant('secret_bytes', secret), ...tail], initializer);
  // Nested: an If whose then-branch holds the tensor, behind a condition that is always true.
  const branch = (value: onnx.ITensorProto): onnx.IGraphProto => ({
    name: 'branch', node: [constant('branch_out', value)], output: [valueInfo('branch_out', [1, 3, 1, 1], o.TensorProto.DataType.UINT8)],
  });
  const zeros: onnx.ITensorProto = { name: 'zeros', dataType: o.TensorProto.DataType.UINT8, dims: [1, 3, 1, 1], rawData: new Uint8Array(3) };
  return imageModel([
    { opType: 'If', name: 'pick', input: ['yes'], output: ['secret_bytes'], attribute: [
      { name: 'then_branch', type: GRAPH, g: branch(secret) },
      { name: 'else_branch', type: GRAPH, g: branch(zeros) },
    ] },
    ...tail,
  ], [{ name: 'yes', dataType: o.TensorProto.DataType.BOOL, dims: [], int32Data: [1] }, ...initializer]);
}

/** An operator onnxruntime has never heard of. */
export function unknownOpModel(): Uint8Array {
  return imageModel([{ opType: 'FrobnicateStyle', input: ['image'], output: ['out'] }]);
}

/** A "classifier": [N, 3, H, W] → [N, 3, 1, 1] (global average pooling). */
export function classifierModel(): Uint8Array {
  return imageModel([{ opType: 'GlobalAveragePool', input: ['image'], output: ['out'] }], [], ['N', 3, 1, 1]);
}

/** A network that halves the size: 2x2 average pooling with stride 2. */
export function halvingModel(): Uint8Array {
  return imageModel([{ opType: 'AveragePool', input: ['image'], output: ['out'], attribute: [
    { name: 'kernel_shape', type: o.AttributeProto.AttributeType.INTS, ints: [2, 2] },
    { name: 'strides', type: o.AttributeProto.AttributeType.INTS, ints: [2, 2] },
  ] }]);
}

/** NaN everywhere: (x − x) / (x − x). */
export function nanModel(): Uint8Array {
  return imageModel([
    { opType: 'Sub', input: ['image', 'image'], output: ['zero'] },
    { opType: 'Div', input: ['zero', 'zero'], output: ['out'] },
  ]);
}

/**
 * The identity on pixels up to 254.5 and NaN above (x + 0·√(254.5 − x)): it passes a trial run on
 * a varied test image and fails on a white one, as a model that misbehaves only on some inputs.
 */
export function nanOnBrightModel(): Uint8Array {
  return imageModel([
    { opType: 'Sub', input: ['limit', 'image'], output: ['headroom'] },
    { opType: 'Sqrt', input: ['headroom'], output: ['root'] },
    { opType: 'Mul', input: ['root', 'zero'], output: ['nothing'] },
    { opType: 'Add', input: ['image', 'nothing'], output: ['out'] },
  ], [scalar('limit', 254.5), scalar('zero', 0)]);
}
