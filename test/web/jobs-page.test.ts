/**
 * Server jobs from the page in headless Chromium: an optimize job started from the form shows
 * progress and preview images and finishes with a downloadable PNG; Cancel stops a long one.
 * Needs the VGG19 weights and images of the shared data (skips, saying why, without them) and a
 * Chromium (skips likewise).
 */
import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import { after, before, test } from 'node:test';
import type { Browser, Page } from 'playwright-core';
import sharp from 'sharp';
import { browserSkip, launchChromium } from '../helpers/browser.js';
import { dataPath } from '../helpers/data.js';
import { scratchStore, serve, type Scratch } from '../server/harness.js';

const vgg = dataPath('models/vgg19-imagenet-tfjs-uint8');
const styleImage = dataPath('images/style/blue_swirls.jpg');
const contentImage = dataPath('images/content/face.jpg');
const skip = browserSkip() || vgg.skip || styleImage.skip || contentImage.skip;

let dir: Scratch;
let server: Awaited<ReturnType<typeof serve>>;
let browser: Browser;
let previousVgg: string | undefined;

before(async () => {
  if (skip) return;
  previousVgg = process.env.PASTICHE_VGG;
  process.env.PASTICHE_VGG = vgg.path;
  dir = await scratchStore('pastiche-web-jobs-');
  server = await serve();
  browser = await launchChromium();
});

after(async () => {
  if (skip) return;
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
