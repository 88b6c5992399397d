/**
 * The image and output doors as the library API meets them (the server will call these, not the
 * CLI): decompression bombs and the memory budget, outputs decided before any work, GIF inputs,
 * folders with links, nothing empty left behind. A pointwise ONNX model keeps every case fast; a
 * "tripwire" copy of it fails if the network is ever reached.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdir, readFile, symlink, writeFile } from 'node:fs/promises';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import sharp from 'sharp';
import { openStyleModel, type StyleModel } from '../../src/style/model.js';
import { estimateStylizeMemory, stylizeFile, stylizeFolder } from '../../src/style/transfer.js';
import { DEFAULT_MAX_MEMORY, imageSize, readImage, writeImage } from '../../src/image/codec.js';
import { AbortError, FileError } from '../../src/util/errors.js';
import { clearModelCache } from '../../src/runtime/index.js';
import { damageMiddle, listTree, scratch, snapshotTree, writeSolidPng } from '../helpers/files.js';
import { zooLikeModel } from '../helpers/models.js';
import { noiseImage, smoothImage } from '../image/fixtures.js';

let dir: Awaited<ReturnType<typeof scratch>>;
let zoo: StyleModel;
/** The pointwise model with a network that throws: a case that reaches it did work it should not have. */
let tripwire: StyleModel;
let bomb: string;

before(async () => {
  dir = await scratch('pastiche-doors-');
  process.env.PASTICHE_HOME = dir.path('home');
  await writeFile(dir.path('zoo.onnx'), zooLikeModel());
  zoo = await openStyleModel(dir.path('zoo.onnx'));
  const session = Object.create(zoo.session) as StyleModel['session'];
  session.run = () => Promise.reject(new Error('the network ran'));
  tripwire = { ...zoo, session };
  bomb = dir.path('bomb.png');
  await writeSolidPng(bomb, 16000, 16000);
});

after(async () => {
  await clearModelCache();
  await dir.cleanup();
});

/** A fresh folder for one case. */
async function caseDir(name: string): Promise<(...parts: string[]) => string> {
  await mkdir(dir.path('cases', name), { recursive: true });
  return (...parts) => dir.path('cases', name, ...parts);
}

/** Asserts a FileError whose one-line message starts with `path: ` and matches `problem`. */
function fileError(path: string, problem: RegExp): (error: unknown) => boolean {
  return (error) => {
    assert.ok(error instanceof FileError, `expected a FileError but got ${String(error)}`);
    assert.ok(error.message.startsWith(`${path}: `), error.message);
    assert.match(error.message, problem);
    assert.ok(!error.message.includes('\n'), 'one line');
    return true;
  };
}

// ---- Decompression bombs and the memory budget -------------------------------------------------

test('a 16000x16000 PNG without size is refused from its header, with the estimate and the budget', async () => {
  const path = await caseDir('bomb-whole');
  const started = performance.now();
  await assert.rejects(stylizeFile(tripwire, bomb, path('out.png')),
    fileError(bomb, /^\S+: needs about \d+(\.\d)? GiB for 16000x16000 pixels, over the memory budget of 8 GiB; use --size or --tile to lower it, or raise --max-memory$/));
  assert.ok(performance.now() - started < 2000, 'refused before decoding');
  assert.deepEqual(await listTree(path()), []);
});

test('the same PNG with size 256 is shrunk while it decodes and stylised', async () => {
  const path = await caseDir('bomb-small');
  const result = await stylizeFile(zoo, bomb, path('out.png'), { size: 256, margin: 0 });
  assert.deepEqual(result, { width: 256, height: 256, output: path('out.png') });
  assert.deepEqual(await imageSize(path('out.png')), { width: 256, height: 256 });
});

test('size 65536 is refused up front with the estimate, not a native out-of-memory', async () => {
  const path = await caseDir('size-65536');
  await writeImage(path('small.png'), smoothImage(40, 30));
  await assert.rejects(stylizeFile(tripwire, path('small.png'), path('out', 'x.png'), { size: 65536 }),
    fileError(path('small.png'), /needs about \d+ GiB for 65536x49152 pixels, over the memory budget of 8 GiB/));
  assert.deepEqual(await listTree(path()), ['small.png']);
});

test('maxMemory sets the budget; the estimate grows with the pixels, tiling caps the network share', async () => {
  const path = await caseDir('max-memory');
  await writeImage(path('in.png'), smoothImage(64, 48));
  await assert.rejects(stylizeFile(tripwire, path('in.png'), path('out.png'), { maxMemory: 2 ** 20 }),
    fileError(path('in.png'), /over the memory budget of 1 MiB/));
  assert.equal((await stylizeFile(zoo, path('in.png'), path('out.png'), { maxMemory: 2 ** 30, margin: 0 })).width, 64);
  await assert.rejects(stylizeFile(zoo, path('in.png'), path('out.png'), { maxMemory: 0 }), RangeError);
  await assert.rejects(stylizeFile(zoo, path('in.png'), path('out.png'), { maxMemory: '4G' as unknown as number }), TypeError);
  assert.equal(DEFAULT_MAX_MEMORY, 8 * 2 ** 30);
  const at = (width: number, height: number, tile: number | 'auto' = 'auto') => estimateStylizeMemory(width, height, { tile });
  assert.ok(at(1000, 1000) < at(2000, 1000) && at(4000, 3000) < at(8000, 6000));
  assert.ok(at(4000, 3000) < at(4000, 3000, 0), 'tiles hold less than a whole run');
  assert.ok(at(6000, 4000) < DEFAULT_MAX_MEMORY, 'a 24 MP camera photo fits the default budget');
  assert.ok(at(16000, 16000) > DEFAULT_MAX_MEMORY);
});

// ---- Damaged input ------------------------------------------------------------------------------

test('a JPEG damaged in the middle is refused; the input is unchanged and nothing is written', async () => {
  const path = await caseDir('mid-damage');
  await writeImage(path('in.jpg'), noiseImage(300, 200));
  await damageMiddle(path('in.jpg'));
  const before = await snapshotTree(path());
  await assert.rejects(stylizeFile(tripwire, path('in.jpg'), path('a', 'b', 'out.jpg')),
    fileError(path('in.jpg'), /cannot decode: the file is corrupt or truncated/));
  assert.deepEqual(await snapshotTree(path()), before, 'no a/b folders left behind');
});

// ---- The output door -----------------------------------------------------------------------------

test('an output without a writable format is refused before the input is even read', async () => {
  const path = await caseDir('bad-format');
  await writeImage(path('in.jpg'), noiseImage(300, 200));
  await damageMiddle(path('in.jpg')); // reading it would fail: the output must be refused first
  for (const output of [path('noext'), path('x.gif'), path('sub', 'x.bmp')]) {
    await assert.rejects(stylizeFile(tripwire, path('in.jpg'), output),
      fileError(output, /(no extension to choose the format by|pastiche cannot write '\.(gif|bmp)' files) \(expected one of \.jpg, \.jpeg, \.png, \.webp, \.avif, \.tif, \.tiff\)$/));
  }
  assert.deepEqual(await listTree(path()), ['in.jpg']);
  assert.ok(!existsSync(path('sub')));
});

test('an existing folder or a path ending in / as output: the image is written into it', async () => {
  const path = await caseDir('into-folder');
  await writeImage(path('photo.jpg'), smoothImage(40, 30));
  await mkdir(path('out'));
  const into = await stylizeFile(zoo, path('photo.jpg'), path('out'), { margin: 0 });
  assert.equal(into.output, path('out', 'photo-zoo.jpg'));
  const slash = await stylizeFile(zoo, path('photo.jpg'), `${path('new')}/`, { margin: 0 });
  assert.equal(slash.output, path('new', 'photo-zoo.jpg'));
  assert.deepEqual(await listTree(path()), ['new/photo-zoo.jpg', 'out/photo-zoo.jpg', 'photo.jpg']);
});

test('a GIF input is written as PNG when no format is named (into a folder, and in folder runs)', async () => {
  const path = await caseDir('gif');
  await mkdir(path('in'));
  const frames = Buffer.alloc(16 * 24 * 3, 180);
  await sharp(frames, { raw: { width: 16, height: 24, channels: 3, pageHeight: 12 } }).gif().toFile(path('in', 'anim.gif'));
  await writeImage(path('in', 'still.jpg'), smoothImage(16, 12));
  const single = await stylizeFile(zoo, path('in', 'anim.gif'), `${path('one')}/`, { margin: 0 });
  assert.equal(single.output, path('one', 'anim-zoo.png'));
  const folder = await stylizeFolder(zoo, path('in'), path('out'), { margin: 0 });
  assert.deepEqual(folder.failed, []);
  assert.deepEqual(await listTree(path('out')), ['anim.png', 'still.jpg']);
  assert.equal((await readImage(path('out', 'anim.png'))).format, 'png');
});

test('an output under a regular file is refused before any work, naming it', async () => {
  const path = await caseDir('under-file');
  await writeImage(path('in.png'), smoothImage(20, 16));
  await writeFile(path('file.txt'), 'a file\n');
  await assert.rejects(stylizeFile(tripwire, path('in.png'), path('file.txt', 'deeper', 'out.png')),
    fileError(path('file.txt', 'deeper', 'out.png'), new RegExp(`cannot write here: ${path('file.txt')} is a file, not a folder`)));
  await assert.rejects(stylizeFolder(tripwire, path(), path('file.txt')),
    fileError(path('file.txt'), /is a file, not a folder/));
});

test('a bad input with -o a/b/c/out.jpg leaves no a/b/c behind', async () => {
  const path = await caseDir('no-empty-folders');
  await writeFile(path('bad.jpg'), 'not a jpeg\n');
  await assert.rejects(stylizeFile(zoo, path('bad.jpg'), path('a', 'b', 'c', 'out.jpg')), fileError(path('bad.jpg'), /not a supported image/));
  assert.ok(!existsSync(path('a')));
});

// ---- Folder runs ---------------------------------------------------------------------------------

test('symlinked files and folders in a folder are reported as skipped, with the reason', async () => {
  const path = await caseDir('links');
  await mkdir(path('in'));
  await mkdir(path('elsewhere'));
  await writeImage(path('elsewhere', 'far.png'), smoothImage(20, 16));
  await writeImage(path('in', 'real.png'), smoothImage(20, 16));
  await symlink(path('elsewhere', 'far.png'), path('in', 'link.png'));
  await symlink(path('elsewhere'), path('in', 'linked-folder'));
  await symlink(path('nowhere.png'), path('in', 'dangling.png'));
  await writeFile(path('elsewhere', 'notes.txt'), 'not an image\n');
  await symlink(path('elsewhere', 'notes.txt'), path('in', 'notes.txt')); // not an image: ignored like any text file
  const result = await stylizeFolder(zoo, path('in'), path('out'), { margin: 0 });
  assert.deepEqual(result.written.map((w) => w.input), [path('in', 'real.png')]);
  assert.deepEqual(result.failed, [
    { input: path('in', 'dangling.png'), error: `${path('in', 'dangling.png')}: is a symbolic link (links inside a folder are not followed)` },
    { input: path('in', 'link.png'), error: `${path('in', 'link.png')}: is a symbolic link (links inside a folder are not followed)` },
    { input: path('in', 'linked-folder'), error: `${path('in', 'linked-folder')}: is a symbolic link to a folder (links inside a folder are not followed)` },
  ]);
  assert.deepEqual(await listTree(path('out')), ['real.png']);
});

test('an empty folder (or one without images) is an error: no images found', async () => {
  const path = await caseDir('empty');
  await mkdir(path('in', 'sub'), { recursive: true });
  await writeFile(path('in', 'notes.txt'), 'no images here\n');
  await assert.rejects(stylizeFolder(tripwire, path('in'), path('out')),
    fileError(path('in'), /no images found \(looked for \.jpg, \.jpeg, \.png, \.webp, \.avif, \.tif, \.tiff, \.gif, in subfolders too\)$/));
  assert.ok(!existsSync(path('out')));
});

test('a folder run in which every image fails leaves no output folder', async () => {
  const path = await caseDir('all-fail');
  await mkdir(path('in', 'sub'), { recursive: true });
  await writeFile(path('in', 'a.jpg'), 'not a jpeg\n');
  await writeFile(path('in', 'sub', 'b.png'), 'not a png\n');
  const result = await stylizeFolder(zoo, path('in'), path('out'), { margin: 0 });
  assert.equal(result.failed.length, 2);
  assert.ok(!existsSync(path('out')), 'no empty output folders');
});

test('aborting a folder run keeps the finished images and says which (AbortError.kept)', async () => {
  const path = await caseDir('abort');
  await mkdir(path('in'));
  for (const name of ['a', 'b', 'c']) await writeImage(path('in', `${name}.png`), smoothImage(20, 16));
  const controller = new AbortController();
  await assert.rejects(stylizeFolder(zoo, path('in'), path('out'), {
    margin: 0, signal: controller.signal, onProgress: (p) => { if (p.done === 1) controller.abort(); },
  }), (error: unknown) => {
    assert.ok(error instanceof AbortError, String(error));
    assert.deepEqual(error.kept, [path('out', 'a.png')]);
    return true;
  });
  assert.deepEqual(await listTree(path('out')), ['a.png']);
  assert.ok((await readFile(path('out', 'a.png'))).length > 0);
});
