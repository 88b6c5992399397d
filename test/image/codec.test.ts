import { test, after, before } from 'node:test';
import assert from 'node:assert/strict';
import { readFile, readdir, writeFile, mkdir } from 'node:fs/promises';
import sharp from 'sharp';
import {
  readImage, writeImage, imageSize, outputFormatFor, isSupportedImagePath, SUPPORTED_IMAGE_EXTENSIONS,
} from '../../src/image/codec.js';
import { resizeImage } from '../../src/image/resize.js';
import { toInterleaved as toInterleavedBytes } from '../../src/image/pixels.js';
import { FileError } from '../../src/util/errors.js';
import { dataPath } from '../helpers/data.js';
import { damageMiddle, writeSolidPng } from '../helpers/files.js';
import { imageFrom, maxDifference, noiseImage, psnr, scratchDir, smoothImage } from './fixtures.js';

let scratch: Awaited<ReturnType<typeof scratchDir>>;
before(async () => { scratch = await scratchDir(); });
after(async () => { await scratch.cleanup(); });

/** Asserts that `promise` rejects with a FileError about `path` whose problem matches `problem`. */
async function rejectsAbout(promise: Promise<unknown>, path: string, problem: RegExp): Promise<void> {
  await assert.rejects(promise, (error: unknown) => {
    assert.ok(error instanceof FileError, `expected a FileError, got ${String(error)}`);
    assert.ok(error.message.startsWith(`${path}: `), error.message);
    assert.match(error.message, problem);
    assert.ok(!error.message.includes('\n'), 'message is one line');
    return true;
  });
}

test('PNG round trip is exact, and the format is reported', async () => {
  const image = noiseImage(37, 23, 7);
  const path = scratch.path('noise.png');
  await writeImage(path, image);
  const decoded = await readImage(path);
  assert.equal(decoded.format, 'png');
  assert.equal(decoded.image.width, 37);
  assert.equal(decoded.image.height, 23);
  assert.equal(decoded.alpha, undefined);
  assert.deepEqual(decoded.image.data, image.data);
});

test('TIFF round trip is exact (lossless compression)', async () => {
  const image = noiseImage(20, 11, 3);
  const path = scratch.path('noise.TIFF');
  await writeImage(path, image);
  const decoded = await readImage(path);
  assert.equal(decoded.format, 'tiff');
  assert.deepEqual(decoded.image.data, image.data);
});

test('JPEG round trip is close, at 4:4:4 chroma', async () => {
  const image = smoothImage(64, 48);
  const path = scratch.path('smooth.jpg');
  await writeImage(path, image);
  const meta = await sharp(path).metadata();
  assert.equal(meta.chromaSubsampling, '4:4:4');
  const decoded = await readImage(path);
  assert.equal(decoded.format, 'jpeg');
  assert.ok(psnr(decoded.image, image) > 38, `PSNR ${psnr(decoded.image, image)}`);
  // A lower quality must cost fidelity: the option is really passed through.
  await writeImage(scratch.path('low.jpeg'), image, { quality: 10 });
  assert.ok(psnr((await readImage(scratch.path('low.jpeg'))).image, image) < psnr(decoded.image, image));
});

test('WebP and AVIF round trips are close', async () => {
  const image = smoothImage(32, 24);
  for (const [name, format] of [['s.webp', 'webp'], ['s.avif', 'heif']] as const) {
    await writeImage(scratch.path(name), image);
    const decoded = await readImage(scratch.path(name));
    assert.equal(decoded.format, format);
    assert.ok(psnr(decoded.image, image) > 30, `${name}: PSNR ${psnr(decoded.image, image)}`);
  }
});

test('writing rounds and clamps to 0..255', async () => {
  const image = imageFrom(4, 1, (x) => [-20, 12.6, 300, Number.NaN][x]);
  await writeImage(scratch.path('clamp.png'), image);
  const { image: decoded } = await readImage(scratch.path('clamp.png'));
  assert.deepEqual(Array.from(decoded.data.subarray(0, 4)), [0, 13, 255, 0]);
});

test('EXIF orientation is applied on read and in imageSize', async () => {
  // Stored 20x10, left half red, right half blue; orientation 6 = display rotated 90 degrees clockwise.
  const stored = Buffer.alloc(20 * 10 * 3);
  for (let y = 0; y < 10; y++) {
    for (let x = 0; x < 20; x++) stored.set(x < 10 ? [255, 0, 0] : [0, 0, 255], (y * 20 + x) * 3);
  }
  const path = scratch.path('rotated.jpg');
  await sharp(stored, { raw: { width: 20, height: 10, channels: 3 } }).jpeg({ quality: 95 }).withMetadata({ orientation: 6 }).toFile(path);
  assert.deepEqual(await imageSize(path), { width: 10, height: 20 });
  const { image } = await readImage(path);
  assert.equal(image.width, 10);
  assert.equal(image.height, 20);
  const n = image.width * image.height;
  const at = (x: number, y: number) => [0, 1, 2].map((c) => image.data[c * n + y * image.width + x]);
  const [r1, , b1] = at(5, 3);
  const [r2, , b2] = at(5, 16);
  assert.ok(r1 > 200 && b1 < 50, 'the stored left half (red) is now on top');
  assert.ok(b2 > 200 && r2 < 50, 'the stored right half (blue) is now at the bottom');
});

test('alpha survives a PNG round trip with keepAlpha, and is flattened onto white without', async () => {
  const image = noiseImage(16, 8, 11);
  const alpha = new Float32Array(16 * 8).map((_, i) => (i * 2) % 256);
  const path = scratch.path('alpha.png');
  await writeImage(path, image, { alpha });
  const kept = await readImage(path, { keepAlpha: true });
  assert.deepEqual(kept.alpha, alpha);
  assert.deepEqual(kept.image.data, image.data);
  const flat = await readImage(path);
  assert.equal(flat.alpha, undefined);
  const n = 16 * 8;
  // Pixel 0 is fully transparent: white. Compositing is rgb * a + 255 * (1 - a).
  for (const i of [0, 50, 127]) {
    for (let c = 0; c < 3; c++) {
      const a = alpha[i] / 255;
      const expected = image.data[c * n + i] * a + 255 * (1 - a);
      assert.ok(Math.abs(flat.image.data[c * n + i] - expected) <= 1.5, `pixel ${i} channel ${c}`);
    }
  }
});

test('alpha is kept in WebP and TIFF, dropped for JPEG', async () => {
  const image = smoothImage(8, 8);
  const alpha = new Float32Array(64).map((_, i) => (i % 2 === 0 ? 255 : 0));
  for (const name of ['a.webp', 'a.tif']) {
    await writeImage(scratch.path(name), image, { alpha });
    const decoded = await readImage(scratch.path(name), { keepAlpha: true });
    assert.ok(decoded.alpha !== undefined, name);
    assert.ok(maxDifference(decoded.alpha, alpha) <= 2, name);
  }
  await writeImage(scratch.path('a.jpg'), image, { alpha });
  assert.equal((await readImage(scratch.path('a.jpg'), { keepAlpha: true })).alpha, undefined);
});

test('greyscale and 16-bit files decode to 3 equal 8-bit channels', async () => {
  const grey = scratch.path('grey.png');
  await sharp(Buffer.from([0, 100, 200, 255]), { raw: { width: 2, height: 2, channels: 1 } }).toColourspace('b-w').png().toFile(grey);
  const { image } = await readImage(grey);
  assert.deepEqual(Array.from(image.data), [0, 100, 200, 255, 0, 100, 200, 255, 0, 100, 200, 255]);
  const deep = scratch.path('deep.png');
  await sharp(new Uint16Array([65535, 0, 257 * 10, 257 * 128, 257 * 128, 257 * 128]), { raw: { width: 2, height: 1, channels: 3 } })
    .toColourspace('rgb16').png().toFile(deep);
  assert.deepEqual(Array.from((await readImage(deep)).image.data), [255, 128, 0, 128, 10, 128]);
});

test('an animated GIF reads as its first frame', async () => {
  const frames = Buffer.alloc(6 * 8 * 3);
  frames.fill(200, 0, 6 * 4 * 3); // frame 1 light grey, frame 2 black
  const path = scratch.path('anim.gif');
  await sharp(frames, { raw: { width: 6, height: 8, channels: 3, pageHeight: 4 } }).gif().toFile(path);
  const { image, format } = await readImage(path);
  assert.equal(format, 'gif');
  assert.deepEqual([image.width, image.height], [6, 4]);
  assert.deepEqual(await imageSize(path), { width: 6, height: 4 });
  assert.ok(image.data.every((v) => Math.abs(v - 200) <= 2));
});

test('missing, empty, folder and non-image inputs are FileErrors naming the path', async () => {
  const missing = scratch.path('nope.jpg');
  await rejectsAbout(readImage(missing), missing, /file not found/);
  await rejectsAbout(imageSize(missing), missing, /file not found/);
  const empty = scratch.path('empty.jpg');
  await writeFile(empty, '');
  await rejectsAbout(readImage(empty), empty, /file is empty/);
  const text = scratch.path('text.jpg');
  await writeFile(text, 'this is not a picture\n');
  await rejectsAbout(readImage(text), text, /not a supported image \(JPEG, PNG, WebP, AVIF, TIFF, GIF\)/);
  await rejectsAbout(imageSize(text), text, /not a supported image/);
  const svg = scratch.path('vector.png');
  await writeFile(svg, '<svg xmlns="http://www.w3.org/2000/svg" width="4" height="4"><rect width="4" height="4"/></svg>');
  await rejectsAbout(readImage(svg), svg, /not a supported image .*found svg/);
  await mkdir(scratch.path('folder.png'));
  await rejectsAbout(readImage(scratch.path('folder.png')), scratch.path('folder.png'), /is a folder/);
});

test('truncated JPEG and PNG files fail instead of decoding partially', async () => {
  const image = noiseImage(64, 48, 5);
  for (const name of ['whole.jpg', 'whole.png', 'whole.tif', 'whole.webp']) {
    await writeImage(scratch.path(name), image);
    const bytes = await readFile(scratch.path(name));
    const cut = scratch.path(`cut-${name}`);
    await writeFile(cut, bytes.subarray(0, Math.floor(bytes.length * 0.6)));
    await rejectsAbout(readImage(cut), cut, /corrupt or truncated/);
  }
  // Even a JPEG missing only its end-of-image marker is caught.
  const bytes = await readFile(scratch.path('whole.jpg'));
  await writeFile(scratch.path('no-eoi.jpg'), bytes.subarray(0, bytes.length - 2));
  await rejectsAbout(readImage(scratch.path('no-eoi.jpg')), scratch.path('no-eoi.jpg'), /corrupt or truncated/);
});

test('images over the pixel limit are refused with the count and the limit', async () => {
  const path = scratch.path('limit.png');
  await writeImage(path, noiseImage(64, 48));
  await rejectsAbout(readImage(path, { maxPixels: 1000 }), path, /64x48 = 3072 pixels, over the limit of 1000 pixels/);
  await rejectsAbout(imageSize(path, { maxPixels: 3071 }), path, /over the limit of 3071/);
  assert.equal((await readImage(path, { maxPixels: 3072 })).image.width, 64);
  await assert.rejects(readImage(path, { maxPixels: 0 }), RangeError);
});

test('an unknown output extension is a RangeError naming it and the supported ones; nothing is written', async () => {
  const path = scratch.path('out.bmp');
  await assert.rejects(writeImage(path, noiseImage(2, 2)), (error: unknown) => {
    assert.ok(error instanceof RangeError);
    assert.match(error.message, /'\.bmp'/);
    assert.match(error.message, /\.jpg, \.jpeg, \.png, \.webp, \.avif, \.tif, \.tiff/);
    return true;
  });
  assert.throws(() => outputFormatFor('out'), /no extension/);
  assert.equal(outputFormatFor('X.JPG'), 'jpeg');
  assert.ok(!(await readdir(scratch.dir)).includes('out.bmp'));
});

test('bad write options are rejected before anything is written', async () => {
  await assert.rejects(writeImage(scratch.path('q.jpg'), noiseImage(2, 2), { quality: 0 }), RangeError);
  await assert.rejects(writeImage(scratch.path('q.png'), noiseImage(2, 2), { alpha: new Float32Array(3) }), RangeError);
  await assert.rejects(writeImage(scratch.path('q.png'), { data: new Float32Array(5), width: 2, height: 2 }), RangeError);
  assert.deepEqual((await readdir(scratch.dir)).filter((name) => name.startsWith('q.') || name.startsWith('.q')), []);
});

test('an unwritable output folder is a FileError and leaves no temp files', async () => {
  const folder = scratch.path('blocked');
  await mkdir(folder);
  await writeFile(`${folder}/file`, 'x');
  const target = `${folder}/file/out.png`; // a path "under" a regular file
  await rejectsAbout(writeImage(target, noiseImage(2, 2)), target, /cannot write here/);
  assert.deepEqual(await readdir(folder), ['file']);
});

test('an encoder failure leaves neither a temp file nor a changed target', async () => {
  const folder = scratch.path('encode-fail');
  await mkdir(folder);
  const target = `${folder}/wide.webp`;
  await writeImage(target, noiseImage(4, 4));
  const before = await readFile(target);
  // WebP cannot hold a side over 16383 pixels: the encoder fails after the write has started.
  await rejectsAbout(writeImage(target, imageFrom(16384, 1, () => 0)), target, /cannot write webp image/);
  assert.deepEqual(await readdir(folder), ['wide.webp']);
  assert.deepEqual(await readFile(target), before);
});

test('supported extensions for folder walking', () => {
  assert.ok(SUPPORTED_IMAGE_EXTENSIONS.includes('.jpg'));
  assert.ok(isSupportedImagePath('/a/B.JPEG'));
  assert.ok(isSupportedImagePath('x.avif'));
  assert.ok(!isSupportedImagePath('notes.txt'));
  assert.ok(!isSupportedImagePath('README'));
});

const tubingen = dataPath('images/content/tubingen.jpg');
test('a real photo decodes to its header size with values in 0..255', { skip: tubingen.skip }, async () => {
  const size = await imageSize(tubingen.path);
  const { image, format } = await readImage(tubingen.path);
  assert.equal(format, 'jpeg');
  assert.deepEqual({ width: image.width, height: image.height }, size);
  let min = Infinity;
  let max = -Infinity;
  for (const v of image.data) { min = Math.min(min, v); max = Math.max(max, v); }
  assert.ok(min >= 0 && max <= 255 && max - min > 100, `range ${min}..${max}`);
});

// ---- Untrusted input: damage, decompression bombs, memory --------------------------------------

test('a JPEG damaged in the middle (400 bytes at 50%) fails instead of decoding half grey', async () => {
  await sharp(Buffer.from(toInterleavedBytes(noiseImage(400, 300, 3))), { raw: { width: 400, height: 300, channels: 3 } })
    .jpeg({ progressive: true }).toFile(scratch.path('progressive.jpg'));
  await writeImage(scratch.path('baseline.jpg'), noiseImage(400, 300, 3));
  await writeImage(scratch.path('smooth.jpg'), smoothImage(640, 480));
  for (const name of ['baseline.jpg', 'progressive.jpg', 'smooth.jpg']) {
    const path = scratch.path(`mid-${name}`);
    await writeFile(path, await readFile(scratch.path(name)));
    await damageMiddle(path);
    const before = await readFile(path);
    await rejectsAbout(readImage(path), path, /cannot decode: the file is corrupt or truncated \(.*Corrupt JPEG data/);
    await rejectsAbout(readImage(path, { size: 64 }), path, /corrupt or truncated/);
    assert.deepEqual(await readFile(path), before, 'the input is unchanged');
  }
});

test('PNG and TIFF damaged in the middle fail too', async () => {
  for (const name of ['noise.png', 'noise.tif']) {
    const path = scratch.path(`mid-${name}`);
    await writeImage(path, noiseImage(400, 300, 3));
    await damageMiddle(path);
    await rejectsAbout(readImage(path), path, /cannot decode: the file is corrupt or truncated/);
  }
});

test('a JPEG with stray bytes before a marker (a harmless camera quirk) still decodes', async () => {
  await writeImage(scratch.path('quirk-src.jpg'), smoothImage(64, 48));
  const bytes = await readFile(scratch.path('quirk-src.jpg'));
  const sos = bytes.indexOf(Buffer.from([0xff, 0xda]));
  await writeFile(scratch.path('quirk.jpg'), Buffer.concat([bytes.subarray(0, sos), Buffer.from([1, 2, 3, 4, 5]), bytes.subarray(sos)]));
  const { image } = await readImage(scratch.path('quirk.jpg'));
  assert.deepEqual([image.width, image.height], [64, 48]);
});

const photoFolders = ['images/content', 'images/content-free', 'images/style', 'images/style-pd', 'photos/train', 'photos/val'].map(dataPath);
test('real photos decode without a false alarm from the damage checks', { skip: photoFolders[0].skip }, async () => {
  let count = 0;
  for (const folder of photoFolders.filter((f) => !f.skip)) {
    const names = (await readdir(folder.path)).filter(isSupportedImagePath).sort();
    // Every photo of the small folders, every 25th of the training sets (the test stays quick).
    for (const [i, name] of names.entries()) {
      if (names.length > 100 && i % 25 !== 0) continue;
      const { image } = await readImage(`${folder.path}/${name}`, { size: 64 });
      assert.equal(Math.max(image.width, image.height), 64, name);
      count++;
    }
  }
  assert.ok(count > 50, `only ${count} photos found`);
});

test('size resizes while decoding (longer side, either orientation, enlarging too, alpha alike)', async () => {
  await writeImage(scratch.path('wide.png'), smoothImage(90, 60));
  const small = await readImage(scratch.path('wide.png'), { size: 30 });
  assert.deepEqual([small.image.width, small.image.height], [30, 20]);
  const whole = await readImage(scratch.path('wide.png'));
  assert.ok(psnr(small.image, await resizeImage(whole.image, 30, 20)) > 30, 'close to resizing after decoding');
  const large = await readImage(scratch.path('wide.png'), { size: 120 });
  assert.deepEqual([large.image.width, large.image.height], [120, 80]);
  const alpha = new Float32Array(90 * 60).fill(255).fill(0, 0, 90 * 30);
  await writeImage(scratch.path('half-clear.png'), smoothImage(90, 60), { alpha });
  const withAlpha = await readImage(scratch.path('half-clear.png'), { size: 30, keepAlpha: true });
  assert.equal(withAlpha.alpha?.length, 30 * 20);
  assert.ok(withAlpha.alpha![0] < 1 && withAlpha.alpha![30 * 20 - 1] > 254);
  await assert.rejects(readImage(scratch.path('wide.png'), { size: 0 }), RangeError);
  await assert.rejects(readImage(scratch.path('wide.png'), { size: 1.5 }), TypeError);
});

test('a 31 kB 16000x16000 PNG: refused from its header without size, decoded small with size', async () => {
  const bomb = scratch.path('bomb.png');
  await writeSolidPng(bomb, 16000, 16000);
  const started = performance.now();
  // Decoded whole it is 3 GiB of float pixels alone: over a 1 GiB budget (stylising adds the network's share).
  await rejectsAbout(readImage(bomb, { maxMemory: 2 ** 30 }), bomb,
    /^\S+: needs about 3\.\d GiB for 16000x16000 pixels, over the memory budget of 1 GiB; use --size to shrink it, or raise --max-memory$/);
  assert.ok(performance.now() - started < 1000, 'refused from the header, without decoding');
  const { image } = await readImage(bomb, { size: 256 });
  assert.deepEqual([image.width, image.height], [256, 256]);
  // The same file interlaced cannot be decoded in a stream, so even a small size costs a full decode.
  const interlaced = scratch.path('bomb-interlaced.png');
  await writeSolidPng(interlaced, 16000, 16000, { interlaced: true });
  await rejectsAbout(readImage(interlaced, { size: 256, maxMemory: 128 * 2 ** 20 }), interlaced, /needs about \d+ MiB for 256x256 pixels, over the memory budget of 128 MiB/);
  assert.deepEqual((await readImage(bomb, { size: 256, maxMemory: 128 * 2 ** 20 })).image.width, 256);
});

test("a caller's planned memory counts against the budget, with its advice", async () => {
  const path = scratch.path('plan.png');
  await writeImage(path, smoothImage(100, 50));
  const plan = { bytesFor: (width: number, height: number) => width * height * 2 ** 21, advice: 'use --size or --tile' };
  await rejectsAbout(readImage(path, { memory: plan }), path, /needs about 9\.8 GiB for 100x50 pixels, over the memory budget of 8 GiB; use --size or --tile$/);
  assert.equal((await readImage(path, { memory: plan, size: 40 })).image.width, 40);
  await rejectsAbout(readImage(path, { memory: plan, size: 65536 }), path, /needs about \d+ GiB for 65536x32768 pixels/);
  await assert.rejects(readImage(path, { maxMemory: 0 }), RangeError);
});
