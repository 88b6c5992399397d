/**
 * The live view's memory over many frames at 640x480 (the test, test/web/memory.test.ts, does the
 * same at 160x120): the JS heaps of the page and its inference worker and every Chromium process's
 * RSS after a GC and a memory-pressure signal, before and after, on WASM. The network is a tiny
 * one, so 1,000 frames take minutes: the page's buffers depend on the frame size, not the weights.
 * Not on SwiftShader's WebGPU, which takes tens of seconds a frame on this machine.
 */
import { launchChromium } from '../test/helpers/browser.js';
import { liveUrl, memoryOverFrames } from '../test/helpers/live-page.js';
import { table } from './util.js';
import type { BenchNetwork } from './web.js';

const types = (byType: Readonly<Record<string, number>>): string => Object.entries(byType).filter(([, v]) => v >= 1).map(([k, v]) => `${k} ${v.toFixed(0)}`).join(', ');

/** Prints heap and RSS before and after `frames` frames of `network` at 640x480, per backend. */
export async function benchLiveMemory(camera: string, server: string, network: BenchNetwork, frames: number): Promise<void> {
  const rows: (string | number)[][] = [];
  const details: string[] = [];
  for (const backend of ['wasm'] as const) {
    const browser = await launchChromium({ camera });
    try {
      const run = await memoryOverFrames(browser, liveUrl(server, { model: network.name, backend, size: '640x480' }), frames, { timeoutMs: 1_800_000 });
      const { before, after } = run;
      rows.push([backend, run.frames, run.seconds.toFixed(0), `${before.heapMiB.toFixed(1)} → ${after.heapMiB.toFixed(1)}`, (after.heapMiB - before.heapMiB).toFixed(2),
        `${before.rssMiB.toFixed(0)} → ${after.rssMiB.toFixed(0)}`, (after.rssMiB - before.rssMiB).toFixed(1)]);
      details.push(`${backend}: inference worker heap ${before.workerHeapMiB.toFixed(1)} → ${after.workerHeapMiB.toFixed(1)} MiB; RSS MiB by process before (${types(before.byType)}), after (${types(after.byType)})`);
    } catch (error) {
      rows.push([backend, 'failed', '', '', '', '', '']);
      details.push(`${backend}: ${(error as Error).message.split('\n')[0]}`);
    } finally {
      await browser.close();
    }
  }
  console.log(`\n## Web: memory over ${frames} live frames, ${network.label}, 640x480 (after 30 warm-up frames; each sample after a GC and a memory-pressure signal, so Chromium's caches are dropped)\n`);
  console.log(table(['backend', 'frames', 'seconds', 'JS heap MiB (page + worker)', 'Δ heap', 'Chromium RSS MiB (all processes)', 'Δ RSS'], rows));
  for (const line of details) console.log(`- ${line}`);
}
