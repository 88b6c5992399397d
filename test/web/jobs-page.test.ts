/**
 * Server jobs from the page in headless Chromium: a video job with the selected style downloads an
 * MP4; an optimize job started from the form shows progress and preview images and finishes with a
 * downloadable PNG; Cancel stops a long one. Optimize needs the VGG19 weights and images of the
 * shared data (skips, saying why, without them); everything needs a Chromium (skips likewise).
 */
import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import { after, before, test } from 'node:test';
import type { Browser, Page } from 'playwright-core';
import sharp from 'sharp';
import { browserSkip, launchChromium } from '../helpers/browser.js';
import { dataPath } from '../helpers/data.js';
import { probeVideo } from '../../src/video/index.js';
import { makeClip } from '../video/clips.js';
import { scratchStore, serve, type Scratch } from '../server/harness.js';

const vgg = dataPath('models/vgg19-imagenet-tfjs-uint8');
const styleImage = dataPath('images/style/blue_swirls.jpg');
const contentImage = dataPath('images/content/face.jpg');
const browserMissing = browserSkip();
const skip = browserMissing || vgg.skip || styleImage.skip || contentImage.skip;

let dir: Scratch;
let server: Awaited<ReturnType<typeof serve>>;
let browser: Browser;
let previousVgg: string | undefined;

before(async () => {
  if (browserMissing) return;
  previousVgg = process.env.PASTICHE_VGG;
  if (!vgg.skip) process.env.PASTICHE_VGG = vgg.path;
  dir = await scratchStore('pastiche-web-jobs-');
  server = await serve();
  browser = await launchChromium();
});

after(async () => {
  if (browserMissing) return;
  await browser?.close();
  await server?.close();
  await dir?.cleanup();
  if (previousVgg === undefined) delete process.env.PASTICHE_VGG;
  else process.env.PASTICHE_VGG = previousVgg;
});

async function startOptimize(page: Page, size: number, iterations: number): Promise<void> {
  await page.selectOption('#job-kind', 'optimize');
  await page.setInputFiles('#job-style', styleImage.path);
  await page.setInputFiles('#job-content', contentImage.path);
  await page.fill('#job-size', String(size));
  await page.fill('#job-iterations', String(iterations));
  await page.click('#job-start');
}

const statusText = async (page: Page) => (await page.textContent('#job-status')) ?? '';

test('an optimize job from the page: progress, previews, a finished PNG to download', { skip }, async () => {
  const page = await browser.newPage({ acceptDownloads: true });
  try {
    await page.goto(`${server.url}/`);
    await startOptimize(page, 32, 6);
    const seen = new Set<string>();
    const end = Date.now() + 120_000;
    while (!/optimize (done|failed|cancelled)/.test(await statusText(page))) {
      assert.ok(Date.now() < end, `the job did not finish: ${await statusText(page)}`);
      seen.add(await statusText(page));
      await page.waitForTimeout(100);
    }
    assert.match(await statusText(page), /optimize done 6\/6 iterations/);
    assert.ok([...seen].some((line) => /optimize (queued|running)/.test(line)), [...seen].join(' | '));
    assert.equal(await page.evaluate(() => (document.getElementById('job-progress') as HTMLProgressElement).value), 6);
    await page.waitForFunction(() => {
      const img = document.getElementById('job-preview') as HTMLImageElement;
      return !img.hidden && img.complete && img.naturalWidth > 0;
    });
    const [download] = await Promise.all([page.waitForEvent('download'), page.click('#job-download')]);
    const meta = await sharp(await readFile(await download.path())).metadata();
    assert.equal(meta.format, 'png');
    assert.equal(Math.max(meta.width ?? 0, meta.height ?? 0), 32);
  } finally {
    await page.close();
  }
});

test('Cancel stops a running optimize job', { skip }, async () => {
  const page = await browser.newPage();
  try {
    await page.goto(`${server.url}/`);
    await startOptimize(page, 48, 2000);
    await page.waitForFunction(() => /optimize running [1-9]\d*\/2000/.test(document.getElementById('job-status')!.textContent ?? ''), undefined, { timeout: 120_000 });
    await page.click('#job-cancel');
    await page.waitForFunction(() => /optimize cancelled/.test(document.getElementById('job-status')!.textContent ?? ''), undefined, { timeout: 30_000 });
    const id = await page.getAttribute('#job-form', 'data-job');
    const status = (await (await fetch(`${server.url}/api/jobs/${id}`)).json()) as { state: string };
    assert.equal(status.state, 'cancelled');
    assert.equal(await page.isDisabled('#job-download'), true, 'nothing to download');
  } finally {
    await page.close();
  }
});

test('a video job from the page: the selected style, progress, an MP4 to download', { skip: browserMissing }, async () => {
  const clip = await makeClip(dir.dir, 'clip.mp4', { size: '64x48', rate: '10', seconds: 1 });
  const page = await browser.newPage({ acceptDownloads: true });
  try {
    await page.goto(`${server.url}/?model=zoo`);
    await page.waitForFunction(() => document.querySelector('#gallery .selected[data-model="zoo"]') !== null);
    await page.selectOption('#job-kind', 'video');
    assert.equal(await page.isVisible('#job-style'), false, 'no style image for a video job');
    await page.setInputFiles('#job-content', clip);
    await page.click('#job-start');
    await page.waitForFunction(() => /video (done|failed)/.test(document.getElementById('job-status')!.textContent ?? ''), undefined, { timeout: 60_000 });
    assert.match(await statusText(page), /video done 10\/10 frames/);
    const [download] = await Promise.all([page.waitForEvent('download'), page.click('#job-download')]);
    assert.match(download.suggestedFilename(), /^video-[0-9a-f-]+\.mp4$/);
    const info = await probeVideo(await download.path());
    assert.deepEqual([info.width, info.height], [64, 48]);
  } finally {
    await page.close();
  }
});
