import { test, after, before } from 'node:test';
import assert from 'node:assert/strict';
import { mkdir, readFile, symlink, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import sharp from 'sharp';
import { decodeSquareCrop } from '../../src/image/crop.js';
import { readImage, writeImage } from '../../src/image/codec.js';
import type { RgbImage } from '../../src/image/types.js';
import {
  epochPermutation, listPhotos, PhotoLoader, PHOTO_EXTENSIONS, type PhotoBatch, type PhotoLoaderOptions,
} from '../../src/style/train-data.js';
import { FileError } from '../../src/util/errors.js';
import { dataPath } from '../helpers/data.js';
import { scratch } from '../helpers/files.js';
import { imageFrom, noiseImage } from '../image/fixtures.js';

let tmp: Awaited<ReturnType<typeof scratch>>;
/** Seven small, different photos (PNG, JPEG, WebP; landscape and portrait) in good/. */
let good: string[];
/** good plus a text file, an empty file and a truncated JPEG posing as photos, in mixed/. */
let mixed: string[];
const SIZE = 8;

before(async () => {
  tmp = await scratch('pastiche-train-data-');
  await mkdir(tmp.path('good'));
  await mkdir(tmp.path('mixed'));
  const names = ['p0.png', 'p1.jpg', 'p2.webp', 'p3.png', 'p4.jpeg', 'p5.png', 'p6.png'];
  for (const [i, name] of names.entries()) {
    const image = noiseImage(12 + 3 * i, 30 - 2 * i, i + 1);
    await writeImage(tmp.path('good', name), image);
    await writeImage(tmp.path('mixed', name), image);
  }
  await writeFile(tmp.path('mixed', 'notes.jpg'), 'not a photo at all');
  await writeFile(tmp.path('mixed', 'empty.png'), '');
  const jpeg = await readFile(tmp.path('good', 'p1.jpg'));
  await writeFile(tmp.path('mixed', 'cut.jpg'), jpeg.subarray(0, Math.floor(jpeg.length * 0.6)));
  good = await listPhotos(tmp.path('good'));
  mixed = await listPhotos(tmp.path('mixed'));
});
after(async () => { await tmp.cleanup(); });

/** Asserts that `promise` rejects with a FileError about `path` whose problem matches `problem`. */
async function rejectsAbout(promise: Promise<unknown>, path: string, problem: RegExp): Promise<void> {
  await assert.rejects(promise, (error: unknown) => {
    assert.ok(error instanceof FileError, `expected a FileError, got ${String(error)}`);
    assert.equal(error.path, path);
    assert.ok(error.message.startsWith(`${path}: `), error.message);
    assert.match(error.message, problem);
    return true;
  });
}

/** The value at (x, y) of channel c. */
function at(image: RgbImage, x: number, y: number, c: number): number {
  return image.data[c * image.width * image.height + y * image.width + x];
}

/** `count` batches from a new loader over `files`, closed afterwards. */
async function take(files: readonly string[], options: PhotoLoaderOptions, count: number): Promise<{ batches: PhotoBatch[]; orders: ReturnType<PhotoLoader['order']>[] }> {
  const loader = new PhotoLoader(files, options);
  const batches: PhotoBatch[] = [];
  const orders = [];
  try {
    for (let k = 0; k < count; k++) {
      batches.push(await loader.next());
      orders.push(loader.order());
    }
  } finally {
    loader.close();
  }
  return { batches, orders };
}

// --- decodeSquareCrop -------------------------------------------------------------------------

test('decodeSquareCrop keeps the centre square of a landscape image (left/right split)', async () => {
  const path = tmp.path('split.png');
  await writeImage(path, imageFrom(40, 20, (x, _y, c) => (x < 20 ? (c === 0 ? 255 : 0) : (c === 2 ? 255 : 0))));
  const crop = await decodeSquareCrop(path, 10);
  assert.equal(crop.width, 10);
  assert.equal(crop.height, 10);
  assert.equal(crop.data.length, 3 * 10 * 10);
  // Shrunk to 20x10, columns 5..14 kept: half red, half blue, the split in the middle.
  for (let y = 0; y < 10; y++) {
    for (let x = 0; x < 4; x++) assert.ok(at(crop, x, y, 0) > 240 && at(crop, x, y, 2) < 15, `red at ${x},${y}`);
    for (let x = 6; x < 10; x++) assert.ok(at(crop, x, y, 2) > 240 && at(crop, x, y, 0) < 15, `blue at ${x},${y}`);
  }
});

/**
 * A test card whose cut-away parts are red (the outer quarters of the longer side) and whose blue
 * stripe (the first tenth of the shorter side) must come out as the first tenth of the crop: that
 * holds only if the shorter side was resized to exactly the crop size.
 */
function card(width: number, height: number): RgbImage {
  const landscape = width >= height;
  return imageFrom(width, height, (x, y, c) => {
    const along = landscape ? x : y;
    const across = landscape ? y : x;
    const long = Math.max(width, height);
    const short = Math.min(width, height);
    if (along < long / 4 || along >= (3 * long) / 4) return c === 0 ? 255 : 0;
    if (across < short / 10) return c === 2 ? 255 : 0;
    return c === 1 ? 255 : 0;
  });
}

for (const [label, width, height, size] of [
  ['landscape, shrunk', 200, 100, 50], ['portrait, shrunk', 100, 200, 50], ['landscape, enlarged', 40, 20, 80],
] as const) {
  test(`decodeSquareCrop resizes the shorter side to size and crops the longer (${label})`, async () => {
    const path = tmp.path(`card-${width}x${height}.png`);
    await writeImage(path, card(width, height));
    const crop = await decodeSquareCrop(path, size);
    assert.equal(crop.width, size);
    assert.equal(crop.height, size);
    const stripe = size / 10;
    for (let along = 2; along < size - 2; along++) {
      for (let across = 0; across < size; across++) {
        const [x, y] = width >= height ? [along, across] : [across, along];
        assert.ok(at(crop, x, y, 0) < 15, `no red (cut-away part) at ${x},${y}: ${at(crop, x, y, 0)}`);
        if (across < stripe - 1) assert.ok(at(crop, x, y, 2) > 200, `blue stripe at ${x},${y}`);
        if (across > stripe + 2) assert.ok(at(crop, x, y, 1) > 240 && at(crop, x, y, 2) < 15, `green at ${x},${y}`);
      }
    }
  });
}

test('decodeSquareCrop of a size x size image is the decoded image itself', async () => {
  const path = tmp.path('square.png');
  await writeImage(path, noiseImage(24, 24, 9));
  const crop = await decodeSquareCrop(path, 24);
  assert.deepEqual(crop.data, (await readImage(path)).image.data);
});

test('decodeSquareCrop flattens transparency onto white and converts grey to RGB', async () => {
  const clear = tmp.path('clear.png');
  await sharp(Buffer.alloc(16 * 12 * 4), { raw: { width: 16, height: 12, channels: 4 } }).png().toFile(clear);
  const crop = await decodeSquareCrop(clear, 6);
  assert.ok(crop.data.every((v) => v === 255), 'transparent black is white');
  const grey = tmp.path('grey.png');
  await sharp(Buffer.alloc(10 * 10, 77), { raw: { width: 10, height: 10, channels: 1 } }).png().toFile(grey);
  const greyCrop = await decodeSquareCrop(grey, 5);
  assert.equal(greyCrop.data.length, 3 * 25);
  assert.ok(greyCrop.data.every((v) => v === 77));
});

test('decodeSquareCrop errors are FileErrors naming the file', async () => {
  await rejectsAbout(decodeSquareCrop(tmp.path('missing.jpg'), 8), tmp.path('missing.jpg'), /file not found/);
  await rejectsAbout(decodeSquareCrop(tmp.path('mixed', 'empty.png'), 8), tmp.path('mixed', 'empty.png'), /file is empty/);
  await rejectsAbout(decodeSquareCrop(tmp.path('mixed', 'notes.jpg'), 8), tmp.path('mixed', 'notes.jpg'), /not a supported image/);
  await rejectsAbout(decodeSquareCrop(tmp.path('mixed', 'cut.jpg'), 8), tmp.path('mixed', 'cut.jpg'), /corrupt or truncated/);
  await rejectsAbout(decodeSquareCrop(tmp.path('good'), 8), tmp.path('good'), /is a folder/);
  await rejectsAbout(decodeSquareCrop(good[0], 8, { maxPixels: 10 }), good[0], /over the limit of 10 pixels/);
  await assert.rejects(decodeSquareCrop(good[0], 0), RangeError);
  await assert.rejects(decodeSquareCrop(good[0], 2.5), TypeError);
});

// --- listPhotos -------------------------------------------------------------------------------

test('listPhotos finds photos recursively by extension (any case), sorted by /-separated relative path', async () => {
  const root = tmp.path('tree');
  for (const folder of ['sub/deeper', 'sub-x', 'sub2']) await mkdir(join(root, folder), { recursive: true });
  for (const file of ['b.jpg', 'A.PNG', 'notes.txt', 'anim.gif', 'sub/c.webp', 'sub/deeper/d.jpeg', 'sub/deeper/e.tif', 'sub-x/f.jpg', 'sub2/g.JPG']) {
    await writeFile(join(root, file), 'x');
  }
  await symlink(join(root, 'b.jpg'), join(root, 'link.jpg'));
  await symlink(join(root, 'sub'), join(root, 'linked-folder'));
  // Code-unit order of '/'-joined paths: '-' < '/' < '2', whatever the platform's separator.
  const expected = ['A.PNG', 'b.jpg', 'sub-x/f.jpg', 'sub/c.webp', 'sub/deeper/d.jpeg', 'sub2/g.JPG'];
  assert.deepEqual(await listPhotos(root), expected.map((rel) => join(root, ...rel.split('/'))));
  assert.deepEqual(PHOTO_EXTENSIONS, ['.jpg', '.jpeg', '.png', '.webp']);
});

test('listPhotos errors name the folder', async () => {
  await rejectsAbout(listPhotos(tmp.path('nowhere')), tmp.path('nowhere'), /no such folder/);
  await rejectsAbout(listPhotos(good[0]), good[0], /is not a folder/);
  const none = tmp.path('no-photos');
  await mkdir(join(none, 'inner'), { recursive: true });
  await writeFile(join(none, 'readme.txt'), 'x');
  await writeFile(join(none, 'inner', 'a.gif'), 'x');
  await rejectsAbout(listPhotos(none), none, /holds no JPEG, PNG or WebP photos/);
});

// --- epochPermutation -------------------------------------------------------------------------

test('epochPermutation is a permutation of 0..n-1', () => {
  for (const n of [0, 1, 2, 7, 100, 1001]) {
    const perm = epochPermutation(n, 5, 3);
    assert.equal(perm.length, n);
    assert.deepEqual([...perm].sort((a, b) => a - b), Array.from({ length: n }, (_, i) => i));
  }
});

test('epochPermutation depends on seed and epoch only, deterministically', () => {
  const n = 50;
  assert.deepEqual(epochPermutation(n, 42, 0), epochPermutation(n, 42, 0));
  const seen = new Set<string>();
  for (const [seed, epoch] of [[42, 0], [42, 1], [42, 2], [43, 0], [0, 0], [0xffffffff, 7]]) {
    seen.add(epochPermutation(n, seed, epoch).join(','));
  }
  assert.equal(seen.size, 6, 'different seeds and epochs give different orders');
  // Pinned, so that a checkpoint written today resumes the same order after a refactor.
  assert.deepEqual([...epochPermutation(10, 1, 0)], [8, 6, 4, 9, 7, 5, 2, 0, 3, 1]);
  assert.deepEqual([...epochPermutation(10, 1, 1)], [6, 2, 9, 1, 3, 4, 8, 0, 7, 5]);
  assert.notDeepEqual([...epochPermutation(n, 42, 0)], Array.from({ length: n }, (_, i) => i));
});

test('epochPermutation validates its arguments', () => {
  assert.throws(() => epochPermutation(-1, 0, 0), RangeError);
  assert.throws(() => epochPermutation(3, -1, 0), RangeError);
  assert.throws(() => epochPermutation(3, 2 ** 32, 0), RangeError);
  assert.throws(() => epochPermutation(3, 0, 1.5), TypeError);
});

// --- PhotoLoader ------------------------------------------------------------------------------

test('every file appears exactly once per epoch, in epochPermutation order; batches span epochs', async () => {
  const n = good.length;
  const { batches, orders } = await take(good, { batch: 3, size: SIZE, seed: 11 }, 7);
  const stream = batches.flatMap((b) => b.files);
  for (let epoch = 0; epoch < 3; epoch++) {
    const expected = [...epochPermutation(n, 11, epoch)].map((i) => good[i]);
    assert.deepEqual(stream.slice(epoch * n, (epoch + 1) * n), expected, `epoch ${epoch}`);
  }
  batches.forEach((b, k) => assert.equal(b.epoch, Math.floor((3 * k) / n), `epoch of batch ${k}`));
  assert.deepEqual(orders[2], { seed: 11, epoch: 1, position: 2 });
  assert.deepEqual(orders[6], { seed: 11, epoch: 3, position: 0 });
});

test('batch data is [batch, 3, size, size]: each image is decodeSquareCrop of its file', async () => {
  const { batches } = await take(good, { batch: 4, size: SIZE, seed: 3 }, 2);
  const plane = 3 * SIZE * SIZE;
  for (const batch of batches) {
    assert.equal(batch.data.length, 4 * plane);
    for (const [i, file] of batch.files.entries()) {
      const crop = await decodeSquareCrop(file, SIZE);
      assert.deepEqual(batch.data.subarray(i * plane, (i + 1) * plane), crop.data, file);
    }
  }
});

for (const [label, files] of [['good photos', () => good], ['with broken files', () => mixed]] as const) {
  test(`resuming from order() gives bit-identical batches, across epoch boundaries (${label})`, async () => {
    const options = { batch: 3, size: SIZE, seed: 2024 };
    const count = 9; // 27 readable files: more than three epochs
    const reference = await take(files(), { ...options, prefetch: 3 }, count);
    if (label === 'with broken files') {
      // The hard case: a checkpoint whose next file is a broken one (it belongs to the next batch).
      const fileAt = (o: { epoch: number; position: number }) => mixed[epochPermutation(mixed.length, options.seed, o.epoch)[o.position]];
      assert.ok(reference.orders.some((o) => /notes|empty|cut/.test(fileAt(o))), 'some resume point is at a broken file');
    }
    for (let k = 0; k < count - 1; k++) {
      const resumed = await take(files(), { ...options, order: reference.orders[k], prefetch: k % 3 }, count - 1 - k);
      for (let j = 0; j < resumed.batches.length; j++) {
        const [a, b] = [reference.batches[k + 1 + j], resumed.batches[j]];
        assert.deepEqual(b.files, a.files, `batch ${k + 1 + j} resumed after ${k + 1}`);
        assert.equal(b.epoch, a.epoch);
        assert.ok(Buffer.from(b.data.buffer).equals(Buffer.from(a.data.buffer)), `data of batch ${k + 1 + j}`);
        assert.deepEqual(resumed.orders[j], reference.orders[k + 1 + j]);
      }
    }
  });
}

test('unreadable files are skipped, reported once each with a reason, and never returned', async () => {
  const reports: Array<[string, string]> = [];
  const { batches } = await take(mixed, { batch: 4, size: SIZE, seed: 5, onSkip: (file, reason) => reports.push([file, reason]) }, 8);
  const bad = new Map([
    [tmp.path('mixed', 'notes.jpg'), /not a supported image/],
    [tmp.path('mixed', 'empty.png'), /file is empty/],
    [tmp.path('mixed', 'cut.jpg'), /corrupt or truncated/],
  ]);
  assert.equal(reports.length, 3, JSON.stringify(reports));
  for (const [file, reason] of reports) {
    assert.match(reason, bad.get(file)!, file);
    assert.ok(!reason.startsWith(file), 'the reason is the problem, without the path');
  }
  for (const batch of batches) {
    assert.equal(batch.files.length, 4);
    for (const file of batch.files) assert.ok(!bad.has(file), `${file} returned`);
  }
  // 32 readable images over 7 good files: every good one came round at least four times.
  const counts = new Map<string, number>();
  for (const file of batches.flatMap((b) => b.files)) counts.set(file, (counts.get(file) ?? 0) + 1);
  assert.deepEqual([...counts.keys()].sort(), mixed.filter((f) => !bad.has(f)).sort());
  assert.ok([...counts.values()].every((c) => c >= 4), JSON.stringify([...counts.values()]));
  const loader = new PhotoLoader(mixed, { batch: 2, size: SIZE, seed: 5, prefetch: 0 });
  for (let k = 0; k < 8; k++) await loader.next();
  assert.deepEqual([...loader.skipped.keys()].sort(), [...bad.keys()].sort());
  for (const [file, reason] of loader.skipped) assert.match(reason, bad.get(file)!);
  loader.close();
});

test('a folder where nothing can be read throws a FileError naming the folder, every time', async () => {
  const dir = tmp.path('all-bad');
  await mkdir(dir);
  for (const name of ['a.jpg', 'b.png', 'c.webp']) await writeFile(join(dir, name), name === 'b.png' ? '' : 'garbage');
  const skipped: string[] = [];
  const loader = new PhotoLoader(await listPhotos(dir), { batch: 2, size: SIZE, seed: 1, onSkip: (file) => skipped.push(file) });
  await rejectsAbout(loader.next(), dir, /cannot read any of the 3 photos \(first failure: .*(a\.jpg|b\.png|c\.webp): /);
  await rejectsAbout(loader.next(), dir, /cannot read any of the 3 photos/);
  // Callers already waiting when it fails all hear about it.
  const again = new PhotoLoader(await listPhotos(dir), { batch: 2, size: SIZE, seed: 1 });
  await Promise.all([1, 2, 3].map(() => rejectsAbout(again.next(), dir, /cannot read any/)));
  again.close();
  assert.equal(skipped.length, 3);
  loader.close();
  const one = new PhotoLoader([join(dir, 'b.png')], { batch: 1, size: SIZE, seed: 1, prefetch: 0 });
  await rejectsAbout(one.next(), dir, /cannot read the only photo \(first failure: b\.png: file is empty\)/);
});

test('order() counts only batches next() returned; prefetched batches have waitMs 0', async () => {
  const loader = new PhotoLoader(good, { batch: 2, size: SIZE, seed: 9, prefetch: 3 });
  assert.deepEqual(loader.order(), { seed: 9, epoch: 0, position: 0 });
  const first = await loader.next();
  assert.ok(first.waitMs >= 0);
  await sleep(300); // far longer than three batches of tiny crops take
  assert.deepEqual(loader.order(), { seed: 9, epoch: 0, position: 2 });
  const second = await loader.next();
  assert.equal(second.waitMs, 0);
  assert.deepEqual(loader.order(), { seed: 9, epoch: 0, position: 4 });
  loader.close();
  await assert.rejects(loader.next(), /after close/);
});

test('close() while next() waits rejects that call', async () => {
  const loader = new PhotoLoader(good, { batch: 2, size: SIZE, seed: 9, prefetch: 0 });
  const pending = loader.next();
  loader.close();
  await assert.rejects(pending, /closed/);
});

test('PhotoLoader validates its options at construction', () => {
  const base = { batch: 2, size: SIZE, seed: 1 };
  assert.throws(() => new PhotoLoader([], base), /at least one photo/);
  assert.throws(() => new PhotoLoader(good, { ...base, batch: 0 }), RangeError);
  assert.throws(() => new PhotoLoader(good, { ...base, size: 1.5 }), TypeError);
  assert.throws(() => new PhotoLoader(good, { ...base, seed: -1 }), RangeError);
  assert.throws(() => new PhotoLoader(good, { ...base, prefetch: -1 }), RangeError);
  assert.throws(() => new PhotoLoader(good, { ...base, order: { seed: 2, epoch: 0, position: 0 } }), /order\.seed to equal seed \(1\) but received 2/);
  assert.throws(() => new PhotoLoader(good, { ...base, order: { seed: 1, epoch: 0, position: good.length } }), /order\.position/);
  assert.throws(() => new PhotoLoader(good, { ...base, order: { seed: 1, epoch: -1, position: 0 } }), /order\.epoch/);
});

const train = dataPath('photos/train');
test('the shared training photos load, and resume exactly', { skip: train.skip }, async () => {
  const files = await listPhotos(train.path);
  assert.ok(files.length >= 100, `${files.length} photos`);
  const options = { batch: 4, size: 128, seed: 7 };
  const reference = await take(files, options, 3);
  for (const batch of reference.batches) {
    assert.equal(batch.data.length, 4 * 3 * 128 * 128);
    assert.ok(batch.data.every((v) => v >= 0 && v <= 255));
  }
  const resumed = await take(files, { ...options, order: reference.orders[0] }, 2);
  assert.deepEqual(resumed.batches.map((b) => b.files), reference.batches.slice(1).map((b) => b.files));
  assert.deepEqual(resumed.batches.map((b) => b.data), reference.batches.slice(1).map((b) => b.data));
});
