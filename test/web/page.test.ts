/**
 * The page of `pastiche serve` in real headless Chromium (Debian's, via playwright-core), with a
 * fake camera: the live view on WASM and on WebGPU (SwiftShader) matches Node's onnxruntime on the
 * very frame it captured; a dropped photo downloads stylised as Node stylises it; a failing
 * backend shows its message; the page loads nothing from other origins; a screenshot lands in
 * test-output/web/. One browser for the file. Skips, saying why, without a Chromium.
 */
import assert from 'node:assert/strict';
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import type { Browser, BrowserContext, Page } from 'playwright-core';
import sharp from 'sharp';
import { openStyleModel, type StyleModel } from '../../src/style/model.js';
import { stylizeImage, type StylizeOptions } from '../../src/style/transfer.js';
import { modelPath, saveModel } from '../../src/weights/store.js';
import { browserSkip, fakeCameraClip, launchChromium, realtimeTestModel } from '../helpers/browser.js';
import { hwcToChw, psnr } from '../helpers/compare.js';
import { projectRoot } from '../helpers/data.js';
import { gradientPng, scratchStore, serve, type Scratch } from '../server/harness.js';

const skip = browserSkip();
let dir: Scratch;
let server: Awaited<ReturnType<typeof serve>>;
let browser: Browser;
let context: BrowserContext;
let model: StyleModel;
const foreign: string[] = [];

before(async () => {
  if (skip) return;
  dir = await scratchStore('pastiche-web-page-');
  // Saved as pastiche's realtime architecture, so the live view runs it without a margin (hook.ts liveMargin).
  await saveModel('rt', realtimeTestModel(), { architecture: 'realtime', source: 'test', description: 'seeded random realtime network' });
  // A store file that is not a model: the server lists it as unreadable, the page must fail visibly on it.
  await writeFile(modelPath('corrupt'), Buffer.from('this is not an ONNX model'));
  model = await openStyleModel('rt', { threads: 1 });
  server = await serve();
  browser = await launchChromium({ camera: await fakeCameraClip(dir.dir), webgpu: true });
  context = await browser.newContext({ acceptDownloads: true });
  context.on('request', (request) => {
    const url = request.url();
    if (!/^(http:\/\/127\.0\.0\.1:\d+\/|data:|blob:)/.test(url)) foreign.push(url);
  });
});

after(async () => {
  if (skip) return;
  await browser?.close();
  await server?.close();
  await dir?.cleanup();
});

interface Hook {
  state: string;
  backend: string | null;
  frames: number;
  error: string | null;
}

const hookOf = (page: Page) => page.evaluate(() => {
  const { state, backend, frames, error } = (window as unknown as { pastiche: Hook }).pastiche;
  return { state, backend, frames, error };
});

/** Waits until the hook satisfies `done` (or fails on the error state / timeout). */
async function waitFor(page: Page, done: (hook: Hook) => boolean, timeoutMs: number): Promise<Hook> {
  const end = Date.now() + timeoutMs;
  for (;;) {
    const hook = await hookOf(page);
    if (done(hook)) return hook;
    if (hook.state === 'error' || Date.now() > end) assert.fail(`waiting for the live view: ${JSON.stringify(hook)}`);
    await page.waitForTimeout(200);
  }
}

interface Captured {
  width: number;
  height: number;
  input: number[];
  output: number[];
  margin: number;
  backend: string;
}

const capture = (page: Page) => page.evaluate(() => (window as unknown as { pastiche: { capture(): Promise<Captured> } }).pastiche.capture());

/** PSNR of a captured frame's output against Node's stylizeImage on its input with `options`. */
async function psnrAgainstNode(captured: Captured, options: StylizeOptions = {}): Promise<number> {
  const { width, height } = captured;
  const content = { data: hwcToChw(captured.input, height, width), width, height };
  const expected = await stylizeImage(model, content, { margin: captured.margin, ...options });
  return psnr(hwcToChw(captured.output, height, width), expected.data);
}

/** Opens the live view; after the first frame, checks a capture against Node and returns the page. */
async function liveMatchesNode(backend: 'wasm' | 'webgpu', size: string, timeoutMs: number, margin?: number): Promise<Page> {
  const page = await context.newPage();
  await page.goto(`${server.url}/?model=rt&backend=${backend}&size=${size}&autostart=1${margin === undefined ? '' : `&margin=${margin}`}`);
  await waitFor(page, (h) => h.frames >= 1, timeoutMs);
  const captured = await capture(page);
  assert.equal(captured.backend, backend);
  assert.equal(`${captured.width}x${captured.height}`, size);
  assert.equal(captured.margin, margin ?? 0, margin === undefined ? 'a realtime network runs without a margin' : 'the margin asked for');
  const db = await psnrAgainstNode(captured);
  console.log(`# live ${backend} ${size}: PSNR ${db.toFixed(1)} dB against Node (margin ${captured.margin})`);
  assert.ok(db >= 35, `PSNR ${db.toFixed(1)} dB`);
  // The picture moves on: more frames after the capture.
  const { frames } = await hookOf(page);
  await waitFor(page, (h) => h.frames > frames, timeoutMs);
  return page;
}

test('live view on WASM: frames match Node, with strength and colours too; snapshot; a screenshot in test-output/web/', { skip }, async () => {
  const page = await liveMatchesNode('wasm', '320x240', 60_000);
  try {
    await page.fill('#strength', '0.5');
    await page.check('#colors');
    const db = await psnrAgainstNode(await capture(page), { strength: 0.5, preserveColors: 'luminance' });
    console.log(`# live wasm, strength 0.5 + luminance colours: PSNR ${db.toFixed(1)} dB against Node`);
    assert.ok(db >= 35, `PSNR ${db.toFixed(1)} dB`);
    const [download] = await Promise.all([page.waitForEvent('download'), page.click('#snapshot')]);
    assert.match(download.suggestedFilename(), /^pastiche-rt-\d+\.png$/);
    const meta = await sharp(await readFile(await download.path())).metadata();
    assert.deepEqual([meta.format, meta.width, meta.height], ['png', 320, 240]);
    await page.waitForFunction(() => [...document.querySelectorAll<HTMLImageElement>('#gallery img')].every((img) => img.complete && img.naturalWidth > 0));
    const folder = join(projectRoot, 'test-output', 'web');
    await mkdir(folder, { recursive: true });
    const path = join(folder, 'page.png');
    await page.screenshot({ path, fullPage: true });
    console.log(`# screenshot: ${path}`);
  } finally {
    await page.close();
  }
});

// SwiftShader runs a frame in seconds, so the WebGPU check uses a small frame (and a margin, as
// zero-padded networks get, so that path runs in a browser too).
test('live view on WebGPU (SwiftShader): a captured frame matches Node (PSNR >= 35 dB)', { skip }, async () => {
  const page = await context.newPage();
  await page.goto(`${server.url}/`); // WebGPU is offered to secure contexts (localhost), not about:blank
  const adapter = await page.evaluate(async () => {
    const gpu = (navigator as unknown as { gpu?: { requestAdapter(): Promise<unknown> } }).gpu;
    return gpu !== undefined && (await gpu.requestAdapter()) !== null;
  }).catch(() => false);
  await page.close();
  if (!adapter) {
    console.log('# skipped the WebGPU check: this Chromium offers no WebGPU adapter even with --enable-unsafe-webgpu --use-webgpu-adapter=swiftshader');
    return;
  }
  await (await liveMatchesNode('webgpu', '64x48', 90_000, 16)).close();
});

test("backend 'auto' picks a backend and says why; the resolution menu restarts the view at 640x480", { skip }, async () => {
  const page = await context.newPage();
  try {
    await page.goto(`${server.url}/?model=rt&backend=auto&size=320x240&autostart=1`);
    const hook = await waitFor(page, (h) => h.frames >= 1, 90_000);
    const status = (await page.textContent('#live-status')) ?? '';
    // A hardware adapter would be timed against WASM; SwiftShader is recognised as software and not tried.
    assert.match(status, /^backend: (wasm|webgpu) \((measured wasm [\d.]+ ms, .+|no WebGPU adapter in this browser|the WebGPU adapter is software, .+: not timed)\)$/);
    assert.equal(hook.backend, /^backend: (\w+)/.exec(status)![1]);
    console.log(`# auto: ${status}`);
    await page.selectOption('#size', '640x480');
    const end = Date.now() + 60_000;
    for (;;) {
      const size = await page.evaluate(() => (window as unknown as { pastiche: { capture(): Promise<Captured> } }).pastiche.capture().then((c) => `${c.width}x${c.height}`, () => 'not running'));
      if (size === '640x480') break;
      assert.ok(Date.now() < end, `still ${size}`);
      await page.waitForTimeout(200);
    }
  } finally {
    await page.close();
  }
});

for (const [where, query, said] of [['in the browser', '', /in the browser \(wasm\)/], ["on the server (over the page's pixel limit)", '&photoMaxPixels=10000', /on the server/]] as const) {
  test(`a dropped photo is stylised ${where} and downloads as a full-size PNG matching Node`, { skip }, async () => {
    const page = await context.newPage();
    try {
      await page.goto(`${server.url}/?model=rt${query}`);
      const png = await gradientPng(150, 101);
      await page.waitForFunction(() => document.querySelector('#gallery [data-model="rt"]') !== null);
      // A real drop event carrying the file, as the browser makes it when a user drags one in.
      await page.evaluate(async (bytes) => {
        const transfer = new DataTransfer();
        transfer.items.add(new File([new Uint8Array(bytes)], 'gradient.png', { type: 'image/png' }));
        document.getElementById('drop-zone')!.dispatchEvent(new DragEvent('drop', { dataTransfer: transfer, bubbles: true, cancelable: true }));
      }, [...png]);
      await page.waitForFunction(() => !(document.getElementById('photo-download') as HTMLButtonElement).disabled, undefined, { timeout: 60_000 });
      assert.match((await page.textContent('#photo-status')) ?? '', said);
      const [download] = await Promise.all([page.waitForEvent('download'), page.click('#photo-download')]);
      assert.equal(download.suggestedFilename(), 'gradient-rt.png');
      const saved = await readFile(await download.path());
      const { data, info } = await sharp(saved).removeAlpha().raw().toBuffer({ resolveWithObject: true });
      assert.deepEqual([info.width, info.height], [150, 101], 'full resolution');
      const content = await sharp(png).raw().toBuffer({ resolveWithObject: true });
      const expected = await stylizeImage(model, { data: hwcToChw(content.data, 101, 150), width: 150, height: 101 });
      const db = psnr(hwcToChw(data, 101, 150), expected.data);
      console.log(`# photo ${where}: PSNR ${db.toFixed(1)} dB against Node`);
      assert.ok(db >= 35, `PSNR ${db.toFixed(1)} dB`);
    } finally {
      await page.close();
    }
  });
}

for (const [what, name, pattern] of [
  ['a model URL that 404s', 'missing', /404/],
  ['a corrupt .onnx', 'corrupt', /could not load the model/],
] as const) {
  test(`a backend failure (${what}) shows its message and the hook says 'error'`, { skip }, async () => {
    const page = await context.newPage();
    try {
      await page.goto(`${server.url}/?model=${name}&backend=wasm&size=320x240&autostart=1`);
      await page.waitForFunction(() => (window as unknown as { pastiche: Hook }).pastiche.state === 'error', undefined, { timeout: 30_000 });
      const hook = await hookOf(page);
      assert.match(hook.error ?? '', pattern);
      const shown = await page.textContent('#live-status');
      assert.match(shown ?? '', pattern);
      assert.ok(await page.isVisible('#live-status.error'), 'the message is shown as an error');
    } finally {
      await page.close();
    }
  });
}

test('behind --token: the page takes the token from the URL fragment and sends it; without it, says 401', { skip }, async () => {
  const token = 'page-test-token-0123456789';
  const secured = await serve({ token });
  const page = await context.newPage();
  try {
    await page.goto(`${secured.url}/`);
    await page.waitForFunction(() => /401/.test(document.getElementById('live-status')!.textContent ?? ''));
    await page.goto(`${secured.url}/?model=rt#token=${token}`);
    await page.waitForFunction(() => {
      const img = document.querySelector<HTMLImageElement>('#gallery [data-model="rt"] img');
      return img !== null && img.complete && img.naturalWidth > 0;
    }, undefined, { timeout: 30_000 });
    assert.equal(new URL(page.url()).hash, '', 'the token is taken out of the address bar');
  } finally {
    await page.close();
    await secured.close();
  }
});

test('the pages above loaded nothing from another origin (no CDN)', { skip }, () => {
  assert.deepEqual(foreign, []);
});
