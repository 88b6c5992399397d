/**
 * Video end to end at 640x480 with the real-time network (issue 10: ≥ 24 fps; the CLI's default
 * thread count should equal the best explicit one): `pastiche stylize clip.mp4 --model <rt>` run
 * as a user runs it (a child process: decode + stylise + encode, AAC audio kept), with its
 * default threads and with --threads 1 and 2, for the fp32 network and its int8 copy. Beside each,
 * the network alone on one frame in this process (stylizeImage, same threads), so the table shows
 * what the pipeline costs beyond inference.
 *
 * The network: `wave-rt` (the built-in REALTIME student, or the store's of that name) when there is one, else the
 * REALTIME preset with random weights (same speed).
 */
import { execFileSync } from 'node:child_process';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { cpus, loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { toOnnxBytes } from '../src/graph/index.js';
import { syntheticPhotos } from '../src/image/synthetic-photos.js';
import { toRgbImage } from '../src/image/pixels.js';
import { buildTransformer, initTransformerParams, REALTIME } from '../src/nets/transformer.js';
import { clearModelCache, defaultThreads, loadModel } from '../src/runtime/index.js';
import { stylizeImage } from '../src/style/transfer.js';
import { decodeFrames, ffmpegPath } from '../src/video/index.js';
import { quantizeModel } from '../src/weights/quantize.js';
import { encodeOnnx } from '../src/weights/onnx-file.js';
import { listModels, META, modelFromSource } from '../src/weights/store.js';
import { table, time } from './util.js';

const [W, H] = [640, 480];
const SECONDS = 6;
const TARGET_FPS = 24;
const cli = fileURLToPath(new URL('../bin/pastiche.js', import.meta.url));

interface CliVideo { frames: number; seconds: number; fps: string }

/** The real-time network's float bytes (float16 built-ins unpacked by the model door), its architecture and where it came from. */
async function realtimeNetwork(): Promise<{ bytes: Uint8Array; architecture: string; label: string }> {
  const found = (await listModels()).find((m) => m.name === 'wave-rt' && m.precision === 'fp32');
  if (found) {
    const bytes = encodeOnnx((await modelFromSource(found.path)).model);
    return { bytes, architecture: found.architecture, label: `${found.builtin ? 'built-in' : 'store'}: wave-rt (${found.architecture}, trained)` };
  }
  return { bytes: toOnnxBytes(buildTransformer(REALTIME, initTransformerParams(REALTIME, 1)).graph), architecture: 'realtime', label: 'REALTIME preset (random weights)' };
}

/** `_threads` (the bench's --threads) is not used: this section compares the CLI's thread settings itself. */
export async function benchVideo(dataDir: string, _threads: number): Promise<void> {
  const dir = await mkdtemp(join(tmpdir(), 'pastiche-bench-video-'));
  try {
    const clip = join(dir, 'fox.mp4');
    // The shared clip (640x640, 29.97 fps) cut to 640x480 with a sine AAC track, so audio is carried too.
    execFileSync(ffmpegPath(), ['-v', 'error', '-i', join(dataDir, 'video/fox.mp4'), '-f', 'lavfi', '-i', 'sine=frequency=440',
      '-t', String(SECONDS), '-vf', `crop=${W}:${H}`, '-c:v', 'libx264', '-pix_fmt', 'yuv420p', '-c:a', 'aac', '-shortest', clip]);
    const network = await realtimeNetwork();
    const int8 = await quantizeModel(network.bytes, syntheticPhotos(6, 384, 288), { label: network.label });
    const models = { fp32: join(dir, 'rt.onnx'), int8: join(dir, 'rt-int8.onnx') };
    await writeFile(models.fp32, network.bytes);
    await writeFile(models.int8, int8);

    let first: Uint8Array | undefined;
    for await (const frame of decodeFrames(clip)) { first = frame; break; }
    const image = toRgbImage(first!, W, H);
    const settings: { label: string; flags: string[]; threads: number }[] = [
      { label: `default (${defaultThreads()})`, flags: [], threads: defaultThreads() },
      { label: '--threads 1', flags: ['--threads', '1'], threads: 1 },
      { label: '--threads 2', flags: ['--threads', '2'], threads: 2 },
    ];
    const loadBefore = loadavg()[0];
    const rows: (string | number)[][] = [];
    const best = new Map<string, { label: string; fps: number }[]>();
    for (const [precision, model] of Object.entries(models)) {
      for (const s of settings) {
        const session = await loadModel(await readFile(model), { threads: s.threads });
        const style = { label: precision, session, input: 'image', output: 'stylized', metadata: { [META.architecture]: network.architecture }, bytes: network.bytes, runtime: { threads: s.threads } };
        const inference = 1000 / (await time(() => stylizeImage(style, image), 9, 2)).medianMs;
        await clearModelCache();
        const out = join(dir, `out-${precision}-${s.threads}.mp4`);
        const t0 = performance.now();
        const stdout = execFileSync(process.execPath, [cli, 'stylize', clip, '--model', model, '-o', out, '--json', ...s.flags], { encoding: 'utf8', maxBuffer: 1 << 24 });
        const wall = (performance.now() - t0) / 1000;
        const result = JSON.parse(stdout) as CliVideo;
        const fps = result.frames / result.seconds;
        best.set(precision, [...(best.get(precision) ?? []), { label: s.label, fps }]);
        rows.push([precision, s.label, result.frames, inference.toFixed(1), fps.toFixed(1), (result.frames / wall).toFixed(1), `${((fps / inference) * 100).toFixed(0)} %`, fps >= TARGET_FPS ? 'yes' : 'no']);
      }
    }
    console.log(`\n## Video end to end at ${W}x${H}: the real-time network through \`pastiche stylize\` (${SECONDS} s of fox.mp4 cropped, H.264 + AAC)\n`);
    console.log(`Network: ${network.label}; int8: quantizeModel on 6 synthetic photos. The CLI runs with its defaults otherwise (the model's margin: none for this reflection-padded network; crf 18).`);
    console.log('inference fps: stylizeImage on one frame in this process, same threads. end-to-end fps: frames / the pipeline\'s seconds (the JSON result: decode, stylise, encode, audio);');
    console.log(`with start-up: frames / the whole command's wall time (Node, model door, session). Load average (1 min) before: ${loadBefore.toFixed(1)}, after: ${loadavg()[0].toFixed(1)} on ${cpus().length} logical cores.\n`);
    console.log(table(['network', 'threads', 'frames', 'inference fps', 'end-to-end fps', 'with start-up fps', 'end-to-end / inference', `≥ ${TARGET_FPS} fps`], rows));
    for (const [precision, list] of best) {
      const [deflt, ...explicit] = list;
      const top = explicit.reduce((a, b) => (b.fps > a.fps ? b : a));
      const verdict = deflt.fps >= top.fps * 0.95 ? 'the default is as fast as the best explicit setting (within 5 %)' : 'the default is slower than the best explicit setting';
      console.log(`${precision}: default threads ${deflt.fps.toFixed(1)} fps, best explicit ${top.label} ${top.fps.toFixed(1)} fps: ${verdict}`);
    }
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}
