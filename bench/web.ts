/**
 * `npm run bench -- --only web`: `pastiche serve` under load (stylize requests/s, latency, RSS,
 * busy replies), and — when Debian's chromium and the web page are there — the live view's fps in
 * headless Chromium on WASM and WebGPU (software), and its memory over 1,000 frames.
 *
 * Networks: the real-time network is `wave-rt` from the user's model store (a REALTIME student of
 * the wave checkpoint) when there is one, else a random-weight REALTIME network of the same shape
 * (same speed, no style); the quality network is the shared lengstrom `wave` checkpoint. Both are
 * copied or imported into a temporary store, so the user's store is never written. `wave-rt-int8`
 * (made by `pastiche models quantize wave-rt`) is measured beside them when the store has it.
 * Flags: --web-seconds N (per measurement, default 10), --web-clients 1,2,8, --web-memory-frames N (default 1000),
 * --web-backends wasm,webgpu, --web-skip-server (browser part only).
 */
import { copyFile, mkdir, mkdtemp, rm } from 'node:fs/promises';
import { existsSync } from 'node:fs';
import { cpus, loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import sharp from 'sharp';
import { toOnnxBytes } from '../src/graph/index.js';
import { buildTransformer, initTransformerParams, REALTIME, resolveArchitecture } from '../src/nets/transformer.js';
import { importModel, modelPath, saveModel } from '../src/weights/store.js';
import { benchServerStylize } from './web-server.js';
import { benchBrowser } from './web-browser.js';

/** A network in the bench's store: its store name and how the tables name it. */
export interface BenchNetwork {
  readonly name: string;
  readonly label: string;
}

/**
 * Fills the store at `home` with the real-time and the quality network; sets PASTICHE_HOME to it
 * for this process (the direct peer opens the same store) and returns the child's environment.
 */
async function benchStore(dataDir: string, home: string): Promise<{ realtime: BenchNetwork; int8: BenchNetwork[]; quality: BenchNetwork; tiny: BenchNetwork }> {
  const userRealtime = modelPath('wave-rt'); // resolved against the user's store, before the switch
  const userInt8 = modelPath('wave-rt-int8'); // `pastiche models quantize wave-rt`, when the user made it
  process.env.PASTICHE_HOME = home;
  await mkdir(join(home, 'models'), { recursive: true });
  let realtime: BenchNetwork;
  if (existsSync(userRealtime)) {
    await copyFile(userRealtime, modelPath('wave-rt'));
    realtime = { name: 'wave-rt', label: 'wave-rt (realtime)' };
  } else {
    const { graph } = buildTransformer(REALTIME, initTransformerParams(REALTIME, 1));
    await saveModel('realtime-random', toOnnxBytes(graph), { architecture: 'realtime', source: 'bench', description: 'random-weight REALTIME network' });
    realtime = { name: 'realtime-random', label: 'realtime, random weights (wave-rt not in the store)' };
  }
  const int8: BenchNetwork[] = [];
  if (existsSync(userInt8)) {
    await copyFile(userInt8, modelPath('wave-rt-int8'));
    int8.push({ name: 'wave-rt-int8', label: 'wave-rt-int8 (realtime, int8)' });
  }
  await importModel(join(dataDir, 'models/fast-style/wave'), { name: 'wave' });
  // For 1,000 frames at 640x480 in minutes: the page's buffers are those of any network at that size.
  const { config } = resolveArchitecture('realtime', { widths: [4, 4, 8], residualBlocks: 1 });
  await saveModel('tiny-rt', toOnnxBytes(buildTransformer(config, initTransformerParams(config, 5)).graph), { architecture: 'realtime', source: 'bench', description: 'tiny random-weight realtime network' });
  return { realtime, int8, quality: { name: 'wave', label: 'wave (lengstrom)' }, tiny: { name: 'tiny-rt', label: 'tiny realtime [4,4,8]x1, random weights' } };
}

function flag(args: readonly string[], name: string): string | undefined {
  const i = args.indexOf(name);
  return i >= 0 ? args[i + 1] : undefined;
}

export async function benchWeb(dataDir: string, threads: number, args: readonly string[]): Promise<void> {
  const seconds = Number(flag(args, '--web-seconds') ?? 10);
  const clients = (flag(args, '--web-clients') ?? '1,2,8').split(',').map(Number);
  const dir = await mkdtemp(join(tmpdir(), 'pastiche-bench-web-'));
  const previousHome = process.env.PASTICHE_HOME;
  try {
    const { realtime, int8, quality, tiny } = await benchStore(dataDir, join(dir, 'home'));
    const env = { ...process.env, PASTICHE_HOME: join(dir, 'home') };
    const jpeg = await sharp(join(dataDir, 'images/content/tubingen.jpg')).resize(640, 480, { fit: 'cover' }).jpeg({ quality: 90 }).toBuffer();
    // Other jobs may share the machine: the load average says how contended these figures are.
    console.log(`\nLoad average at start: ${loadavg().map((l) => l.toFixed(1)).join(' ')} on ${cpus().length} logical cores.`);
    if (!args.includes('--web-skip-server')) await benchServerStylize({ models: [realtime, quality], jpeg, dir, env, threads, clients, seconds });
    await benchBrowser({ networks: [realtime, ...int8, quality], memoryNetwork: tiny, dir, env, seconds, memoryFrames: Number(flag(args, '--web-memory-frames') ?? 1000),
      backends: (flag(args, '--web-backends') ?? 'wasm,webgpu').split(',').filter((b): b is 'wasm' | 'webgpu' => b === 'wasm' || b === 'webgpu') });
  } finally {
    if (previousHome === undefined) delete process.env.PASTICHE_HOME;
    else process.env.PASTICHE_HOME = previousHome;
    await rm(dir, { recursive: true, force: true });
  }
}
