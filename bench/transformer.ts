/**
 * Feed-forward inference of the lengstrom network (la_muse checkpoint): pastiche on onnxruntime-node
 * against two peers in the same process: the same graph exported as plain ONNX operators (no
 * conv lowerings: what a straightforward export runs at on the same runtime) and TF.js-wasm running
 * the same network (test/helpers/tf-reference.ts).
 */
import { join } from 'node:path';
import { buildTransformer, LENGSTROM } from '../src/nets/transformer.js';
import { toOnnxBytes } from '../src/graph/index.js';
import { clearModelCache, loadModel } from '../src/runtime/index.js';
import { readLengstromCheckpoint } from '../src/weights/lengstrom.js';
import { lengstromReference, readTfVariables, tf } from '../test/helpers/tf-reference.js';
import { syntheticImage, table, time, useTfWasm, type Timing } from './util.js';

const SIZES: [number, number][] = [[256, 256], [640, 480]];


export async function benchTransformer(dataDir: string, threads: number): Promise<{ ms256: number; fps: Record<string, number> }> {
  const checkpoint = join(dataDir, 'models/fast-style/la_muse');
  const { graph } = buildTransformer(LENGSTROM, await readLengstromCheckpoint(checkpoint));
  const model = await loadModel(toOnnxBytes(graph), { threads });
  const plainModel = await loadModel(toOnnxBytes(graph, { lowering: 'direct' }), { threads });

  // The onnxruntime models first at every size, then TF.js-wasm: its heap (GiBs at 512²) left
  // behind would otherwise share the machine with the runs measured after it.
  const ours = new Map<string, Timing>();
  const plain = new Map<string, Timing>();
  for (const [w, h] of SIZES) {
    const image = { data: syntheticImage(w, h), dims: [1, 3, h, w] };
    ours.set(`${w}x${h}`, await time(() => model.run({ image }), 11, 2));
    plain.set(`${w}x${h}`, await time(() => plainModel.run({ image }), 7, 2));
  }
  await clearModelCache();

  const peerBuild = await useTfWasm(threads);
  const vars = readTfVariables(checkpoint);

  const rows: (string | number)[][] = [];
  const fps: Record<string, number> = {};
  let ms256 = 0;
  for (const [w, h] of SIZES) {
    const planar = syntheticImage(w, h);
    const nhwc = new Float32Array(planar.length);
    for (let i = 0; i < w * h; i++) for (let c = 0; c < 3; c++) nhwc[i * 3 + c] = planar[c * w * h + i];
    const peer = await time(() => lengstromReference(vars, nhwc, h, w), w * h > 70000 ? 3 : 5, 1);
    const own = ours.get(`${w}x${h}`)!;
    const direct = plain.get(`${w}x${h}`)!;
    if (w === 256) ms256 = own.medianMs;
    fps[`${w}x${h}`] = 1000 / own.medianMs;
    rows.push([`${w}x${h}`, own.medianMs.toFixed(1), own.bestMs.toFixed(1), (1000 / own.medianMs).toFixed(1),
      direct.medianMs.toFixed(1), (own.medianMs / direct.medianMs).toFixed(2) + 'x',
      peer.medianMs.toFixed(0), (peer.medianMs / own.medianMs).toFixed(1) + 'x']);
  }
  await tf.setBackend('cpu');
  console.log(`\n## Feed-forward inference: lengstrom network (la_muse), ${threads} threads, batch 1\n`);
  console.log(`${peerBuild} · onnxruntime-node threads: ${threads}\n`);
  console.log(table(['size', 'pastiche ms (median)', 'best ms', 'fps', 'plain ONNX ms', 'time vs plain', 'TF.js-wasm ms', 'speed-up'], rows));
  console.log('\nplain ONNX: the same graph exported with lowering \'direct\' (ConvTranspose, 9x9 Conv, DepthToSpace as written), same runtime and threads.');
  return { ms256, fps };
}
