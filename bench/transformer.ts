/**
 * Feed-forward inference of the lengstrom network (la_muse checkpoint): pastiche on onnxruntime-node
 * against TF.js-wasm running the same network (test/helpers/tf-reference.ts) in the same process.
 */
import { join } from 'node:path';
import { buildTransformer, LENGSTROM } from '../src/nets/transformer.js';
import { toOnnxBytes } from '../src/graph/index.js';
import { loadModel } from '../src/runtime/index.js';
import { readLengstromCheckpoint } from '../src/weights/lengstrom.js';
import { lengstromReference, readTfVariables, tf } from '../test/helpers/tf-reference.js';
import { syntheticImage, table, time, type Timing } from './util.js';

const SIZES: [number, number][] = [[256, 256], [512, 512], [640, 480]];


export async function benchTransformer(dataDir: string, threads: number): Promise<{ ms256: number; fps: Record<string, number> }> {
  const checkpoint = join(dataDir, 'models/fast-style/la_muse');
  const model = await loadModel(toOnnxBytes(buildTransformer(LENGSTROM, await readLengstromCheckpoint(checkpoint)).graph), { threads });

  // pastiche first at every size, then the peer: TF.js-wasm's heap (GiBs at 512²) left behind
  // would otherwise share the machine with the runs measured after it.
  const ours = new Map<string, Timing>();
  for (const [w, h] of SIZES) {
    const planar = syntheticImage(w, h);
    ours.set(`${w}x${h}`, await time(() => model.run({ image: { data: planar, dims: [1, 3, h, w] } }), 11, 2));
  }

  await import('@tensorflow/tfjs-backend-wasm');
  const wasm = await import('@tensorflow/tfjs-backend-wasm');
  wasm.setThreadsCount(threads);
  await tf.setBackend('wasm');
  await tf.ready();
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
    if (w === 256) ms256 = own.medianMs;
    fps[`${w}x${h}`] = 1000 / own.medianMs;
    rows.push([`${w}x${h}`, own.medianMs.toFixed(1), own.bestMs.toFixed(1), (1000 / own.medianMs).toFixed(1),
      peer.medianMs.toFixed(0), (peer.medianMs / own.medianMs).toFixed(1) + 'x']);
  }
  await tf.setBackend('cpu');
  console.log(`\n## Feed-forward inference: lengstrom network (la_muse), ${threads} threads, batch 1\n`);
  console.log(`tfjs-wasm threads: ${wasm.getThreadsCount?.() ?? '?'} · onnxruntime-node threads: ${threads}\n`);
  console.log(table(['size', 'pastiche ms (median)', 'best ms', 'fps', 'TF.js-wasm ms', 'speed-up'], rows));
  return { ms256, fps };
}
