/**
 * `pastiche optimize` and `pastiche train` on hostile inputs (issue 13, items 3 and 5 beyond
 * stylize): a 31 kB 16000x16000 PNG as the style image is shrunk while decoding to the size the
 * run uses (peak RSS measured from the child's own maxRSS), and optimize's output is decided and
 * checked before any work: a folder is written into, an input or an unwritable format is refused,
 * and a failed run leaves no folder behind.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { mkdir, readFile } from 'node:fs/promises';
import { existsSync } from 'node:fs';
import { writeImage } from '../../src/image/codec.js';
import { runCli, type CliResult } from '../helpers/cli.js';
import { listTree, scratch, writeSolidPng } from '../helpers/files.js';
import { CONTENT_LAYERS, STYLE_LAYERS, TINY_FLAGS, writePhotos, writeRandomVgg } from '../helpers/train.js';
import { smoothImage } from '../image/fixtures.js';

/**
 * Peak RSS allowed with the 16000x16000 PNG as the style image. The program (Node, tsx, sharp,
 * onnxruntime, a small VGG) takes ~250 MiB; decoding the whole image costs over 5 GB.
 */
const BOMB_RSS_MIB = 400;

let dir: Awaited<ReturnType<typeof scratch>>;
let env: Record<string, string>;
let bomb: string;
let vgg: string;
let content: string;
let photos: string;

before(async () => {
  dir = await scratch('pastiche-style-inputs-');
  env = { PASTICHE_HOME: dir.path('home') };
  bomb = dir.path('bomb.png');
  await writeSolidPng(bomb, 16000, 16000);
  vgg = await writeRandomVgg(dir.path('vgg.safetensors'));
  content = dir.path('content.png');
  await writeImage(content, smoothImage(48, 40));
  photos = dir.path('photos');
  await writePhotos(photos, 2);
});

after(async () => {
  await dir.cleanup();
});

const show = (r: CliResult): string => `exit ${r.code}\nstdout: ${r.stdout}\nstderr: ${r.stderr}`;
const LAYERS = ['--content-layers', CONTENT_LAYERS.join(','), '--style-layers', STYLE_LAYERS.join(',')];
const optimize = (args: readonly string[], measureRss = false): Promise<CliResult> =>
  runCli(['optimize', ...args, '--vgg', vgg, ...LAYERS, '--iterations', '2', '--threads', '1', '--json'], { env, measureRss });
const sha = async (path: string): Promise<string> => createHash('sha256').update(await readFile(path)).digest('hex');

test(`optimize: a 16000x16000 PNG style image is shrunk while decoding (peak RSS < ${BOMB_RSS_MIB} MiB)`, async () => {
  const out = dir.path('bomb-optimize', 'out.png');
  const r = await optimize([content, '--style', bomb, '--size', '32', '-o', out], true);
  assert.equal(r.code, 0, show(r));
  assert.ok(existsSync(out));
  assert.ok(r.peakRssMiB! < BOMB_RSS_MIB, `peak RSS ${r.peakRssMiB?.toFixed(0)} MiB`);
  console.log(`# peak RSS, optimize with a 16000x16000 style image at --size 32: ${r.peakRssMiB?.toFixed(0)} MiB`);
});

test(`train: a 16000x16000 PNG style image is shrunk to --style-size while decoding (peak RSS < ${BOMB_RSS_MIB} MiB)`, async () => {
  const r = await runCli(['train', '--style', bomb, '--data', photos, '--name', 'bomb', ...TINY_FLAGS, '--size', '32', '--batch', '1',
    '--steps', '1', '--style-size', '64', '--vgg', vgg, ...LAYERS, '--threads', '1', '--json'], { env, measureRss: true, timeoutMs: 120_000 });
  assert.equal(r.code, 0, show(r));
  assert.ok(r.peakRssMiB! < BOMB_RSS_MIB, `peak RSS ${r.peakRssMiB?.toFixed(0)} MiB`);
  console.log(`# peak RSS, train with a 16000x16000 style image at --style-size 64: ${r.peakRssMiB?.toFixed(0)} MiB`);
});

test('optimize -o: an existing folder or a path ending in / is written into', async () => {
  const into = dir.path('into');
  await mkdir(into);
  const style = dir.path('starry.png');
  await writeImage(style, smoothImage(24, 24));
  const r = await optimize([content, '--style', style, '--size', '24', '-o', into]);
  assert.equal(r.code, 0, show(r));
  assert.deepEqual(await listTree(into), ['content-starry.png']);
  const below = dir.path('made', 'below');
  const r2 = await optimize([content, '--style', style, '--size', '24', '-o', `${below}/`]);
  assert.equal(r2.code, 0, show(r2));
  assert.deepEqual(await listTree(below), ['content-starry.png']);
});

test('optimize refuses, before any work, an output that is an input or in a format it cannot write', async () => {
  const style = dir.path('style-in.png');
  await writeImage(style, smoothImage(24, 24));
  const before = await sha(style);
  const r = await optimize([content, '--style', style, '-o', style]);
  assert.equal(r.code, 1, show(r));
  assert.deepEqual(r.errorLines, [`pastiche: ${style}: is the input ${style}: pastiche never overwrites its input; choose another --output`]);
  assert.equal(await sha(style), before);
  const gif = dir.path('never', 'out.gif');
  const r2 = await optimize([content, '--style', style, '-o', gif]);
  assert.equal(r2.code, 1, show(r2));
  assert.equal(r2.errorLines.length, 1, r2.stderr);
  assert.ok(r2.errorLines[0].startsWith(`pastiche: ${gif}: `), r2.errorLines[0]);
  assert.ok(!existsSync(dir.path('never')), 'no folder made for a refused output');
});

test('optimize that fails after its checks (a damaged VGG file) leaves no output folder behind', async () => {
  const style = dir.path('style-ok.png');
  await writeImage(style, smoothImage(24, 24));
  const broken = dir.path('broken.safetensors');
  await writeSolidPng(broken, 4, 4); // not a safetensors file
  const out = dir.path('left', 'behind', 'out.png');
  const r = await runCli(['optimize', content, '--style', style, '--vgg', broken, ...LAYERS, '-o', out], { env });
  assert.equal(r.code, 1, show(r));
  assert.equal(r.errorLines.length, 1, r.stderr);
  assert.ok(!existsSync(dir.path('left')), 'no folder made for a run that failed');
});
