/**
 * The serve page's live view in headless Chromium, driven through its test hook: the page opened
 * with `?autostart=1` runs the (fake) camera without clicks and keeps `window.pastiche` up to date.
 * Used by the memory test (test/web/memory.test.ts) and the web bench (bench/web-browser.ts).
 */
import { readFileSync } from 'node:fs';
import type { Browser, Page } from 'playwright-core';
import { Inspector } from './inspector.js';

/** The page's test hook, `window.pastiche`. */
export interface LiveHook {
  readonly state: 'loading' | 'running' | 'error';
  readonly backend: string;
  /** Stylised frames shown so far. */
  readonly frames: number;
  readonly fps: number;
  /** How long the last network run took, in ms (onnxruntime's own time, measured in the worker). */
  readonly runMs: number;
  readonly error?: string;
}

export interface LiveOptions {
  /** Store name of the network. */
  readonly model: string;
  readonly backend: 'wasm' | 'webgpu' | 'auto';
  /** e.g. '320x240' */
  readonly size: string;
}

/** The page URL that starts the live view by itself. */
export function liveUrl(base: string, options: LiveOptions): string {
  const query = new URLSearchParams({ model: options.model, backend: options.backend, size: options.size, autostart: '1' });
  return `${base}/?${query}`;
}

declare const window: { pastiche?: LiveHook };

/** The hook's current value (without capture(), which does not cross into Node). */
export async function hook(page: Page): Promise<LiveHook | undefined> {
  return page.evaluate(() => {
    const p = window.pastiche;
    return p === undefined ? undefined : { state: p.state, backend: p.backend, frames: p.frames, fps: p.fps, runMs: p.runMs, error: p.error };
  });
}

/**
 * Opens the live view and waits until it runs.
 * @throws Error with the page's own message when it reports an error, or when it is not running after `timeoutMs`.
 */
export async function openLive(browser: Browser, url: string, timeoutMs = 60_000): Promise<Page> {
  const page = await browser.newPage();
  const logged: string[] = [];
  page.on('console', (m) => {
    if (m.type() === 'error') logged.push(m.text());
  });
  page.on('pageerror', (e) => logged.push(e.message));
  await page.goto(url);
  try {
    await page.waitForFunction(() => window.pastiche?.state === 'running' || window.pastiche?.state === 'error', undefined, { timeout: timeoutMs, polling: 100 });
  } catch (error) {
    const state = await hook(page).catch(() => undefined);
    await page.close();
    throw new Error(`the live view at ${url} was not running after ${timeoutMs / 1000} s (hook: ${JSON.stringify(state)}; page errors: ${logged.join(' | ') || 'none'})`, { cause: error });
  }
  const state = await hook(page);
  if (state?.state === 'error') {
    await page.close();
    throw new Error(`the live view at ${url} failed: ${state.error}`);
  }
  return page;
}

/** The reflected margin the live view pads frames with (from the next frame's capture()). */
export async function liveMarginOf(page: Page): Promise<number> {
  return page.evaluate(() => (window.pastiche as unknown as { capture(): Promise<{ margin: number }> }).capture().then((c) => c.margin));
}

/** Waits until the page has shown at least `frames` stylised frames. */
export async function waitFrames(page: Page, frames: number, timeoutMs: number): Promise<void> {
  await page.waitForFunction((n) => (window.pastiche?.frames ?? 0) >= n || window.pastiche?.state === 'error', frames, { timeout: timeoutMs, polling: 100 });
  const state = await hook(page);
  if (state?.state === 'error') throw new Error(`the live view stopped with an error: ${state.error}`);
}

export interface FpsMeasure {
  /** Frames per second from the frame counter over the measured window, in the page's clock. */
  readonly fps: number;
  readonly frames: number;
  readonly seconds: number;
  /** The page's own fps counter at the end. */
  readonly pageFps: number;
  /** Median of the page's `runMs` (the network's time per frame) sampled every 250 ms. */
  readonly runMs: number;
  /**
   * CPU time of all Chromium's processes per frame shown, in ms (CDP SystemInfo.getProcessInfo):
   * what a frame costs the machine, not how long it waits for a core.
   */
  readonly cpuMsPerFrame: number;
}

/** CPU seconds used so far by every process of `browser`. */
export async function browserCpuSeconds(browser: Browser): Promise<number> {
  const cdp = await browser.newBrowserCDPSession();
  try {
    const info = (await cdp.send('SystemInfo.getProcessInfo')) as { processInfo: { cpuTime: number }[] };
    return info.processInfo.reduce((sum, p) => sum + p.cpuTime, 0);
  } finally {
    await cdp.detach();
  }
}

/**
 * Frames shown per second over about `seconds`, after `warmup` frames are discarded. A slow
 * configuration is measured over at least two frames, waiting up to `maxSeconds` for each phase;
 * `frames` says how many the figure rests on (0: none came, and `fps` is an upper bound).
 */
export async function measureFps(browser: Browser, page: Page, warmup: number, seconds: number, maxSeconds = 120): Promise<FpsMeasure> {
  await waitFrames(page, warmup, maxSeconds * 1000).catch((error: unknown) => {
    if (!(error instanceof Error && error.name === 'TimeoutError')) throw error;
  });
  const read = () => page.evaluate(() => ({ frames: window.pastiche?.frames ?? 0, fps: window.pastiche?.fps ?? 0, runMs: window.pastiche?.runMs ?? NaN, t: performance.now() }));
  const cpuStart = await browserCpuSeconds(browser);
  const start = await read();
  const runs: number[] = [];
  while ((await read()).t - start.t < seconds * 1000) {
    runs.push((await read()).runMs);
    await new Promise((resolve) => setTimeout(resolve, 250));
  }
  if ((await read()).frames - start.frames < 2) {
    await waitFrames(page, start.frames + 2, Math.max(0, maxSeconds - seconds) * 1000).catch((error: unknown) => {
      if (!(error instanceof Error && error.name === 'TimeoutError')) throw error;
    });
  }
  const end = await read();
  const cpu = (await browserCpuSeconds(browser)) - cpuStart;
  const elapsed = (end.t - start.t) / 1000;
  const frames = end.frames - start.frames;
  runs.push(end.runMs);
  runs.sort((a, b) => a - b);
  return { fps: Math.max(frames, 1) / elapsed, frames, seconds: elapsed, pageFps: end.fps, runMs: runs[Math.floor(runs.length / 2)], cpuMsPerFrame: (1000 * cpu) / Math.max(frames, 1) };
}

export interface MemorySample {
  /**
   * The JS heaps of the page and its workers after a full GC, ArrayBuffer backing stores included
   * (typed arrays, ImageData), in MiB (CDP Runtime.getHeapUsage: usedSize + backingStorageSize).
   */
  readonly heapMiB: number;
  /** The workers' part of {@link heapMiB} (the inference worker's, for the serve page). */
  readonly workerHeapMiB: number;
  /** Resident memory of every Chromium process together, in MiB. */
  readonly rssMiB: number;
  /** Resident memory by process type (renderer, GPU, browser, ...), in MiB. */
  readonly byType: Readonly<Record<string, number>>;
}

/** Resident memory of `pid` in MiB (VmRSS), or 0 when the process is gone. */
function rssOf(pid: number): number {
  try {
    const match = /^VmRSS:\s+(\d+) kB/m.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
    return match ? Number(match[1]) / 1024 : 0;
  } catch {
    return 0;
  }
}

export interface SampleOptions {
  /**
   * Send a critical memory-pressure signal first (CDP Memory.simulatePressureNotification), so
   * Chromium drops its caches: without it, the renderer keeps every new camera frame's decoded
   * image in discardable shared memory (4 MiB segments, ~150 KiB a frame at 320x240) until memory
   * runs short, which is a cache, not a leak.
   */
  readonly purge?: boolean;
}

/**
 * The heaps of the page and its workers after forced garbage collections, and the RSS of the
 * browser's processes (their ids from CDP SystemInfo.getProcessInfo, their memory from /proc).
 */
export async function memorySample(browser: Browser, inspector: Inspector, options: SampleOptions = {}): Promise<MemorySample> {
  const { session } = inspector;
  if (options.purge) {
    await session.send('Memory.simulatePressureNotification', { level: 'critical' });
    // The renderer frees its caches asynchronously after the signal.
    await new Promise((resolve) => setTimeout(resolve, 500));
  }
  // Twice: the first run may leave objects whose finalisers free more on the second.
  for (let i = 0; i < 2; i++) {
    await session.send('HeapProfiler.collectGarbage');
    await inspector.sendToWorkers('HeapProfiler.collectGarbage');
  }
  const heap = await session.send('Runtime.getHeapUsage');
  const workers = await inspector.sendToWorkers<{ usedSize: number; backingStorageSize: number }>('Runtime.getHeapUsage');
  const workerHeap = workers.reduce((sum, w) => sum + w.usedSize + w.backingStorageSize, 0);
  const browserCdp = await browser.newBrowserCDPSession();
  const info = (await browserCdp.send('SystemInfo.getProcessInfo')) as { processInfo: { type: string; id: number }[] };
  await browserCdp.detach();
  const byType: Record<string, number> = {};
  for (const p of info.processInfo) byType[p.type] = (byType[p.type] ?? 0) + rssOf(p.id);
  const rssMiB = Object.values(byType).reduce((a, b) => a + b, 0);
  return { heapMiB: (heap.usedSize + heap.backingStorageSize + workerHeap) / 2 ** 20, workerHeapMiB: workerHeap / 2 ** 20, rssMiB, byType };
}

export interface MemoryRun {
  readonly before: MemorySample;
  readonly after: MemorySample;
  /** Frames shown between the two samples. */
  readonly frames: number;
  readonly seconds: number;
}

/**
 * Runs the live view at `url` for `frames` frames after `warmup` (arenas grow during the first
 * frames and then should not), sampling memory at both ends after a GC and, unless `purge` is
 * false, a memory-pressure signal (see {@link SampleOptions}).
 */
export async function memoryOverFrames(browser: Browser, url: string, frames: number, options: { warmup?: number; timeoutMs?: number; purge?: boolean } = {}): Promise<MemoryRun> {
  const { warmup = 30, timeoutMs = 600_000, purge = true } = options;
  const page = await openLive(browser, url, timeoutMs);
  try {
    const inspector = await Inspector.attach(page);
    await waitFrames(page, warmup, timeoutMs);
    const before = await memorySample(browser, inspector, { purge });
    const start = await hook(page);
    const t0 = performance.now();
    await waitFrames(page, (start?.frames ?? warmup) + frames, timeoutMs);
    const seconds = (performance.now() - t0) / 1000;
    const end = await hook(page);
    const after = await memorySample(browser, inspector, { purge });
    await inspector.detach();
    return { before, after, frames: (end?.frames ?? 0) - (start?.frames ?? 0), seconds };
  } finally {
    await page.close();
  }
}
