/**
 * The live view's fps in headless Chromium (Debian's chromium, fake camera), for each network,
 * frame size and backend (WASM; WebGPU on SwiftShader, a software adapter), with onnxruntime-node
 * running the same network on the same padded input in this process as the peer. Then a CPU
 * profile of the page's main thread for the real-time network at 320x240 on WASM (where the frame
 * time goes), and the page's memory over 1,000 frames at 640x480 (bench/web-memory.ts).
 * A configuration that shows no frame within its waits is printed as '< fps' over the time waited.
 */
import type { Browser } from 'playwright-core';
import { clearModelCache, loadModel } from '../src/runtime/index.js';
import { modelPath } from '../src/weights/store.js';
import { readFile } from 'node:fs/promises';
import { browserSkip, fakeCameraClip, launchChromium } from '../test/helpers/browser.js';
import { liveMarginOf, liveUrl, measureFps, openLive } from '../test/helpers/live-page.js';
import { planFrame } from '../web/pixels.js';
import { profileLive } from './web-profile.js';
import { benchLiveMemory } from './web-memory.js';
import { startServerChild } from './web-server.js';
import { table } from './util.js';
import type { BenchNetwork } from './web.js';

const SIZES = ['320x240', '640x480'] as const;
const BACKENDS = ['wasm', 'webgpu'] as const;

export interface BrowserBenchOptions {
  readonly networks: readonly BenchNetwork[];
  /** The network of the memory run. */
  readonly memoryNetwork: BenchNetwork;
  readonly dir: string;
  /** The bench store's environment (PASTICHE_HOME) for the server child. */
  readonly env: NodeJS.ProcessEnv;
  readonly seconds: number;
  /** Frames for the memory run (default 1,000). */
  readonly memoryFrames?: number;
  /** Backends to time (default both). */
  readonly backends?: readonly (typeof BACKENDS)[number][];
}

/** onnxruntime-node on the page's padded input for `size`: frames per second of the network alone. */
async function nodeFps(name: string, margin: number, size: string, threads: number, seconds: number): Promise<number> {
  const [width, height] = size.split('x').map(Number);
  const plan = planFrame(width, height, margin);
  const model = await loadModel(await readFile(modelPath(name)), { threads }, name);
  const data = new Float32Array(3 * plan.paddedWidth * plan.paddedHeight).fill(128);
  const run = () => model.run({ image: { data, dims: [1, 3, plan.paddedHeight, plan.paddedWidth] } });
  await run();
  let frames = 0;
  const t0 = performance.now();
  while (performance.now() - t0 < seconds * 1000) {
    await run();
    frames++;
  }
  return frames / ((performance.now() - t0) / 1000);
}

/** Prints the fps table, the profile and the memory run; says why and returns when Chromium is absent. */
export async function benchBrowser(options: BrowserBenchOptions): Promise<void> {
  const skip = browserSkip();
  if (skip) {
    console.log(`\n## Web: live view in the browser\n\nskipped: ${skip}`);
    return;
  }
  const camera = await fakeCameraClip(options.dir, '640x480', 30);
  const server = await startServerChild(options.env);
  const rows: (string | number)[][] = [];
  const notes: string[] = [];
  const margins = new Map<string, number>();
  try {
    for (const backend of options.backends ?? BACKENDS) {
      const browser: Browser = await launchChromium({ camera, webgpu: backend === 'webgpu' });
      try {
        console.error(`bench web: ${await browser.version()}, ${backend}`);
        for (const network of options.networks) {
          for (const size of SIZES) {
            const url = liveUrl(server.url, { model: network.name, backend, size });
            let plan: ReturnType<typeof planFrame> | undefined;
            try {
              const page = await openLive(browser, url, 120_000);
              // Warm-up: the first frames compile kernels and grow arenas. SwiftShader's WebGPU
              // takes tens of seconds a frame here, so it gets one warm-up frame and longer waits.
              const fps = backend === 'wasm' ? await measureFps(browser, page, 3, options.seconds, 60) : await measureFps(browser, page, 1, options.seconds, 90);
              // The page's own margin for the network (none for reflection-padded architectures),
              // asked once per network from a WASM frame: a WebGPU frame may take minutes.
              if (!margins.has(network.name)) margins.set(network.name, await liveMarginOf(page));
              const margin = margins.get(network.name)!;
              plan = planFrame(Number(size.split('x')[0]), Number(size.split('x')[1]), margin);
              await page.close();
              const peer = await nodeFps(network.name, margin, size, 2, Math.min(options.seconds, 5));
              const shown = `${fps.frames === 0 ? '< ' : ''}${fps.fps.toFixed(fps.fps < 1 ? 2 : 1)}`;
              rows.push([network.label, size, `${plan.paddedWidth}x${plan.paddedHeight}`, backend, shown, fps.frames, (1000 / fps.fps).toFixed(0), fps.runMs > 0 ? fps.runMs.toFixed(0) : '', fps.cpuMsPerFrame.toFixed(0), peer.toFixed(1), (fps.fps / peer).toFixed(2)]);
            } catch (error) {
              rows.push([network.label, size, plan ? `${plan.paddedWidth}x${plan.paddedHeight}` : '', backend, 'failed', '', '', '', '', '', '']);
              notes.push(`${network.label} ${size} ${backend}: ${(error as Error).message.split('\n')[0]}`);
            }
          }
        }
      } finally {
        await browser.close();
      }
    }
    console.log(`\n## Web: live view fps in headless Chromium, fake camera, ${options.seconds} s (at least 2 frames) after 3 warm-up frames (WebGPU: 1)\n`);
    console.log("The page pads each frame by the network's live margin (web/hook.ts liveMargin: 0 for reflection-padded architectures, else 16 px) to a multiple of 4: 'network input'.");
    console.log('Peer: onnxruntime-node (2 threads) running the same network on that padded input in the bench process, network alone.');
    console.log('frame ms: 1000 / page fps; run ms: onnxruntime\'s own time for a frame in the inference worker (median of the hook\'s runMs); the page');
    console.log('keeps two frames in flight, so its grabbing, packing and drawing overlap the run. CPU ms/frame: all Chromium');
    console.log("processes' CPU time per frame shown (it rises too when other jobs share the machine; 2 cores give 2000 CPU ms a second).\n");
    console.log(table(['network', 'size', 'network input', 'backend', 'page fps', 'frames', 'frame ms', 'run ms', 'CPU ms/frame', 'node fps', 'ratio'], rows));
    for (const note of notes) console.log(`- ${note}`);
    await profileLive(camera, server.url, options.networks[0], '320x240', Math.min(options.seconds, 6));
    await benchLiveMemory(camera, server.url, options.memoryNetwork, options.memoryFrames ?? 1000);
  } finally {
    await server.stop();
    await clearModelCache();
  }
}
