/**
 * Where a live frame's time goes: CDP CPU profiles of the page's main thread and of its inference
 * worker (web/worker.ts, where onnxruntime-web runs), self time per function mapped back to
 * web/*.ts and onnxruntime-web through the bundle's source map, in milliseconds per frame. With
 * WASM threads the network's kernels run on the inference worker's thread and on onnxruntime's
 * own pthread workers (not profiled: their share is the worker's wait, shown as idle there).
 */
import { SourceMap } from 'node:module';
import type { Page } from 'playwright-core';
import { launchChromium } from '../test/helpers/browser.js';
import { Inspector } from '../test/helpers/inspector.js';
import { liveUrl, openLive, waitFrames } from '../test/helpers/live-page.js';
import { table } from './util.js';
import type { BenchNetwork } from './web.js';

interface ProfileNode {
  id: number;
  callFrame: { functionName: string; url: string; lineNumber: number; columnNumber: number };
}
interface Profile {
  nodes: ProfileNode[];
  samples: number[];
  timeDeltas: number[];
  startTime: number;
  endTime: number;
}

interface MappedSource {
  map: SourceMap;
  sources: Map<string, string[]>;
}

async function sourceMapOf(url: string, cache: Map<string, MappedSource | null>): Promise<MappedSource | null> {
  if (!cache.has(url)) {
    let mapped: MappedSource | null = null;
    try {
      const res = await fetch(`${url}.map`);
      if (res.ok) {
        const payload = (await res.json()) as { sources: string[]; sourcesContent?: string[] };
        const sources = new Map(payload.sources.map((s, i) => [s, (payload.sourcesContent?.[i] ?? '').split('\n')]));
        mapped = { map: new SourceMap(payload as ConstructorParameters<typeof SourceMap>[0]), sources };
      }
    } catch {
      mapped = null;
    }
    cache.set(url, mapped);
  }
  return cache.get(url)!;
}

/** A readable name for a profile node: a pseudo-node, a wasm kernel, a browser built-in, or file:function in the sources. */
async function label(node: ProfileNode, maps: Map<string, MappedSource | null>): Promise<string> {
  const { functionName, url, lineNumber, columnNumber } = node.callFrame;
  if (functionName.startsWith('(')) return functionName;
  if (url.endsWith('.wasm') || /^\$|^wasm-function/.test(functionName)) return 'onnxruntime-web wasm (the network\'s kernels)';
  if (url === '') return `${functionName || '(anonymous)'} (browser built-in)`;
  const mapped = await sourceMapOf(url, maps);
  const entry = mapped?.map.findEntry(lineNumber, columnNumber) as { originalSource?: string; originalLine?: number } | undefined;
  if (mapped === null || entry?.originalSource === undefined) return `${functionName || '(anonymous)'} in ${url.split('/').pop()}`;
  const file = entry.originalSource.replace(/^.*node_modules\//, '').replace(/^.*\/(web\/[^/]+)$/, '$1');
  const line = mapped.sources.get(entry.originalSource)?.[entry.originalLine ?? 0] ?? '';
  const name = /(?:function\s*\*?\s*|async\s+)?([A-Za-z_$][\w$]*)\s*(?:=\s*(?:async\s*)?\(|\()/.exec(line.trim())?.[1];
  if (file.startsWith('onnxruntime-web')) return 'onnxruntime-web JavaScript';
  return `${file}${name ? ` ${name}` : `:${(entry.originalLine ?? 0) + 1}`}`;
}

/** Self time by readable label, in microseconds. */
async function selfTimes(profile: Profile, maps: Map<string, MappedSource | null>): Promise<Map<string, number>> {
  const selfUs = new Map<number, number>();
  profile.samples.forEach((id, i) => selfUs.set(id, (selfUs.get(id) ?? 0) + (profile.timeDeltas[i] ?? 0)));
  const byLabel = new Map<string, number>();
  for (const node of profile.nodes) {
    const us = selfUs.get(node.id);
    if (us === undefined) continue;
    const key = await label(node, maps);
    byLabel.set(key, (byLabel.get(key) ?? 0) + us);
  }
  return byLabel;
}

const frameCount = (page: Page) => page.evaluate(() => (globalThis as unknown as { pastiche: { frames: number } }).pastiche.frames);

/** Profiles the live view of `network` at `size` on WASM for `seconds` and prints ms per frame by function, per thread. */
export async function profileLive(camera: string, server: string, network: BenchNetwork, size: string, seconds: number): Promise<void> {
  const browser = await launchChromium({ camera });
  try {
    const page = await openLive(browser, liveUrl(server, { model: network.name, backend: 'wasm', size }), 180_000);
    const inspector = await Inspector.attach(page);
    await waitFrames(page, 3, 120_000);
    await inspector.session.send('Profiler.enable');
    await inspector.session.send('Profiler.setSamplingInterval', { interval: 200 });
    await inspector.sendToWorkers('Profiler.enable');
    await inspector.sendToWorkers('Profiler.setSamplingInterval', { interval: 200 });
    const before = await frameCount(page);
    await Promise.all([inspector.session.send('Profiler.start'), inspector.sendToWorkers('Profiler.start')]);
    await new Promise((resolve) => setTimeout(resolve, seconds * 1000));
    const [main, workers] = await Promise.all([
      inspector.session.send('Profiler.stop') as unknown as Promise<{ profile: Profile }>,
      inspector.sendToWorkers<{ profile: Profile }>('Profiler.stop'),
    ]);
    const frames = (await frameCount(page)) - before;
    const threads = [{ name: 'page main thread', profile: main.profile }, ...workers.map((w, i) => ({ name: `worker ${inspector.workerUrls()[i]?.split('/').pop()}`, profile: w.profile }))];
    await inspector.detach();
    await page.close();
    const maps = new Map<string, MappedSource | null>();
    const totalMs = (main.profile.endTime - main.profile.startTime) / 1000;
    console.log(`\n## Web: where a live frame's time goes (${network.label}, ${size}, WASM: ${frames} frames in ${(totalMs / 1000).toFixed(1)} s, ${(totalMs / Math.max(frames, 1)).toFixed(1)} ms a frame)\n`);
    const rows: (string | number)[][] = [];
    for (const { name, profile } of threads) {
      const threadMs = (profile.endTime - profile.startTime) / 1000;
      const byLabel = [...(await selfTimes(profile, maps))].sort((a, b) => b[1] - a[1]).slice(0, 8);
      for (const [what, us] of byLabel) rows.push([name, what, (us / 1000 / Math.max(frames, 1)).toFixed(2), `${((100 * us) / 1000 / threadMs).toFixed(1)}%`]);
    }
    console.log(table(['thread', 'self time in', 'ms / frame', 'share of thread'], rows));
  } finally {
    await browser.close();
  }
}
