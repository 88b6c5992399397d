/**
 * Reading and adjusting ONNX model files made elsewhere: validation as a style model (one image
 * input, one image output), symbolic height/width for fixed-size models (e.g. the ONNX model zoo's
 * 1x3x224x224 fast-neural-style networks), and metadata_props.
 */
import onnxProto, { type onnx } from 'onnx-proto';
import { FileError, messageOf } from '../util/errors.js';

const { ModelProto, TensorProto } = onnxProto.onnx;

/** Decodes ONNX bytes; `label` names the file in errors. */
export function decodeOnnx(bytes: Uint8Array, label: string): onnx.ModelProto {
  let model: onnx.ModelProto;
  try {
    model = ModelProto.decode(bytes);
  } catch (error) {
    throw new FileError(label, `not an ONNX model (${messageOf(error)})`, { cause: error });
  }
  if (!model.graph?.node?.length || !model.opsetImport?.length) {
    throw new FileError(label, 'not an ONNX model (no graph or opset found)');
  }
  return model;
}

export function encodeOnnx(model: onnx.ModelProto): Uint8Array {
  return ModelProto.encode(model).finish();
}

/** The model's metadata_props as a plain object. */
export function readMetadata(model: onnx.IModelProto): Record<string, string> {
  return Object.fromEntries((model.metadataProps ?? []).map((p) => [p.key ?? '', p.value ?? '']));
}

/** Replaces the given metadata keys, keeping the others. */
export function setMetadata(model: onnx.ModelProto, entries: Readonly<Record<string, string>>): void {
  const merged = { ...readMetadata(model), ...entries };
  model.metadataProps = Object.entries(merged).map(([key, value]) => onnxProto.onnx.StringStringEntryProto.create({ key, value }));
}

/** The graph inputs that are fed at run time (initializers are sometimes listed as inputs too). */
function runtimeInputs(model: onnx.ModelProto): onnx.IValueInfoProto[] {
  const initializers = new Set((model.graph?.initializer ?? []).map((t) => t.name));
  return (model.graph?.input ?? []).filter((i) => !initializers.has(i.name ?? ''));
}

/**
 * Checks that a model maps one float image [N, 3, H, W] to one float image, and returns the
 * input and output names.
 * @throws FileError naming the file when it does not.
 */
export function checkStyleModel(model: onnx.ModelProto, label: string): { input: string; output: string } {
  const inputs = runtimeInputs(model);
  const outputs = model.graph?.output ?? [];
  if (inputs.length !== 1 || outputs.length !== 1) {
    throw new FileError(label, `a style model needs one input and one output, this has ${inputs.length} inputs and ${outputs.length} outputs`);
  }
  const tensor = inputs[0].type?.tensorType;
  const dims = tensor?.shape?.dim ?? [];
  const channels = dims[1]?.dimValue;
  if (tensor?.elemType !== TensorProto.DataType.FLOAT || dims.length !== 4 || (channels !== undefined && channels !== null && Number(channels) !== 3)) {
    throw new FileError(label, 'a style model needs a float32 image input of shape [N, 3, H, W]');
  }
  return { input: inputs[0].name!, output: outputs[0].name! };
}

/**
 * Makes the input's batch, height and width symbolic ('N', 'H', 'W') and drops the fixed shapes
 * recorded for the output and intermediate values, so a model exported at one size runs at any.
 * Returns whether anything changed.
 */
export function makeSpatialDimsSymbolic(model: onnx.ModelProto): boolean {
  const [input] = runtimeInputs(model);
  const dims = input.type!.tensorType!.shape!.dim!;
  let changed = false;
  ['N', undefined, 'H', 'W'].forEach((symbol, axis) => {
    if (symbol && dims[axis].dimParam !== symbol) {
      dims[axis] = { dimParam: symbol };
      changed = true;
    }
  });
  if (changed) {
    for (const output of model.graph?.output ?? []) {
      const outDims = output.type?.tensorType?.shape?.dim;
      if (outDims?.length === 4) {
        [0, 2, 3].forEach((axis) => { outDims[axis] = {}; });
      }
    }
    model.graph!.valueInfo = [];
  }
  return changed;
}
