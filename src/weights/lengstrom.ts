/**
 * Maps a lengstrom/fast-style-transfer checkpoint (as dumped for deeplearn.js / ml5: variables
 * `Variable`, `Variable_1` … `Variable_47`) onto the transformer network's parameters.
 */
import { join } from 'node:path';
import type { Tensor } from '../graph/index.js';
import { LENGSTROM, transformerParamShapes } from '../nets/transformer.js';
import { FileError } from '../util/errors.js';
import { readCheckpointDump, readCheckpointManifest } from './checkpoint-dump.js';
import { hwioToOihw, hwoiToIohw } from './layout.js';

type Convert = (t: Tensor) => Tensor;
const same: Convert = (t) => t;

/** Each layer's conv, shift and scale variables are consecutive: conv at `index`, then shift, then scale. */
function layerMap(): { variable: string; param: string; convert: Convert }[] {
  const v = (i: number): string => (i === 0 ? 'Variable' : `Variable_${i}`);
  const entries: { variable: string; param: string; convert: Convert }[] = [];
  const layer = (index: number, conv: string, norm: string, convert: Convert): void => {
    entries.push({ variable: v(index), param: `${conv}.conv2d.weight`, convert });
    entries.push({ variable: v(index + 1), param: `${norm}.bias`, convert: same });
    entries.push({ variable: v(index + 2), param: `${norm}.weight`, convert: same });
  };
  layer(0, 'conv1', 'in1', hwioToOihw);
  layer(3, 'conv2', 'in2', hwioToOihw);
  layer(6, 'conv3', 'in3', hwioToOihw);
  for (let b = 0; b < 5; b++) {
    layer(9 + 6 * b, `res${b + 1}.conv1`, `res${b + 1}.in1`, hwioToOihw);
    layer(12 + 6 * b, `res${b + 1}.conv2`, `res${b + 1}.in2`, hwioToOihw);
  }
  layer(39, 'deconv1', 'in4', hwoiToIohw);
  layer(42, 'deconv2', 'in5', hwoiToIohw);
  layer(45, 'deconv3', 'in6', hwioToOihw);
  return entries;
}

/** True when `dir` looks like a lengstrom checkpoint dump (has the 48 variables). */
export async function isLengstromCheckpoint(dir: string): Promise<boolean> {
  try {
    const manifest = await readCheckpointManifest(dir);
    return layerMap().every((e) => manifest.has(e.variable));
  } catch {
    return false;
  }
}

/**
 * Reads a lengstrom checkpoint dump as transformer parameters (ONNX layouts, pytorch names).
 * @throws FileError naming the variable's file when it is missing or has the wrong shape.
 */
export async function readLengstromCheckpoint(dir: string): Promise<Map<string, Tensor>> {
  const map = layerMap();
  const tensors = await readCheckpointDump(dir, map.map((e) => e.variable));
  const shapes = transformerParamShapes(LENGSTROM);
  const manifest = await readCheckpointManifest(dir);
  const params = new Map<string, Tensor>();
  for (const { variable, param, convert } of map) {
    const converted = convert(tensors.get(variable)!);
    const expected = shapes.get(param)!;
    if (converted.shape.join() !== expected.join()) {
      const file = join(dir, manifest.get(variable)!.filename);
      const raw = tensors.get(variable)!.shape;
      throw new FileError(file, `variable '${variable}' has shape [${raw.join(', ')}], which does not fit ${param} of the lengstrom network`);
    }
    params.set(param, converted);
  }
  return params;
}
