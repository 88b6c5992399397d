import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { copyFile, link, mkdir, stat, symlink, truncate, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { processVideo, type VideoProgress } from '../../src/video/pipeline.js';
import { countFrames, probeVideo } from '../../src/video/ffmpeg.js';
import { AbortError, FileError } from '../../src/util/errors.js';
import { dataPath } from '../helpers/data.js';
import { snapshotTree } from '../helpers/files.js';
import {
  audioCodec, audioSeconds, ffmpeg, ffmpegsLeft, firstFrame, invert, listDir, makeClip, meanAbsDiff, tempDir,
} from './clips.js';

let dir = '';
let withAudio = '';
let cleanup = async (): Promise<void> => {};
before(async () => {
  ({ dir, cleanup } = await tempDir());
  withAudio = await makeClip(dir, 'tone.mp4');
});
after(() => cleanup());

/** A fresh, empty output folder for one test. */
async function outDir(name: string): Promise<string> {
  const path = join(dir, name);
  await mkdir(path);
  return path;
}

function assertNoFfmpegLeft(left: number | null): void {
  if (left !== null) assert.equal(left, 0, 'ffmpeg processes left running');
}

test('inverting a clip keeps frame count, fps, size and audio length', async () => {
  const out = join(await outDir('invert'), 'inverted.mp4');
  const progress: VideoProgress[] = [];
  const result = await processVideo({ input: withAudio, output: out, transform: invert, onProgress: (p) => progress.push(p) });
  assert.deepEqual({ ...result, seconds: 0 }, { frames: 25, fps: '25/1', width: 64, height: 48, seconds: 0 });
  assert.ok(result.seconds > 0);
  assert.deepEqual(await listDir(join(dir, 'invert')), ['inverted.mp4']);

  assert.equal(await countFrames(out), 25);
  const info = await probeVideo(out);
  assert.deepEqual([info.width, info.height, info.fps, info.hasAudio], [64, 48, '25/1', true]);
  assert.equal(await audioCodec(out), 'aac');
  const [a, b] = [await audioSeconds(withAudio), await audioSeconds(out)];
  assert.ok(Math.abs(a - b) <= 1024 / 44100, `audio ${b}s vs source ${a}s`);

  // Really transformed: close to the inverted source, far from the source itself.
  const source = await firstFrame(withAudio);
  const written = await firstFrame(out);
  assert.ok(meanAbsDiff(written, invert(source)) < 6, `MAE vs inverted ${meanAbsDiff(written, invert(source))}`);
  assert.ok(meanAbsDiff(written, source) > 50);

  assert.deepEqual(progress.map((p) => p.frame), Array.from({ length: 25 }, (_, i) => i + 1));
  const last = progress.at(-1) as VideoProgress;
  assert.ok(last.total !== null && Math.abs(last.total - 25) <= 1);
  assert.ok(last.fps > 0 && last.etaSeconds !== null && last.etaSeconds >= 0 && last.etaSeconds < 1);
});

test('a clip without audio gives a video without audio; 29.97 fps stays 30000/1001', async () => {
  const input = await makeClip(dir, 'ntsc.mp4', { rate: '30000/1001', audio: false });
  const out = join(await outDir('ntsc'), 'out.mov');
  const result = await processVideo({ input, output: out, transform: (f) => f });
  assert.equal(result.fps, '30000/1001');
  const info = await probeVideo(out);
  assert.equal(info.fps, '30000/1001');
  assert.equal(info.hasAudio, false);
  assert.equal(await countFrames(out), await countFrames(input));
});

test('a rotated clip is processed upright at its displayed size', async () => {
  const plain = await makeClip(dir, 'plain.mp4', { audio: false, seconds: 0.2 });
  const rotated = join(dir, 'rotated.mp4');
  await ffmpeg(['-i', plain, '-c', 'copy', '-metadata:s:v:0', 'rotate=90', '-y', rotated]);
  const out = join(await outDir('rotated'), 'out.mp4');
  const result = await processVideo({ input: rotated, output: out, transform: (f) => f });
  assert.deepEqual([result.width, result.height], [48, 64]);
  const info = await probeVideo(out);
  assert.deepEqual([info.rotation, info.width, info.height], [0, 48, 64]);
});

test('PCM audio that mp4 cannot hold is re-encoded to AAC', async () => {
  const input = await makeClip(dir, 'pcm.mov', { audio: 'pcm' });
  assert.equal(await audioCodec(input), 'pcm_s16le');
  const out = join(await outDir('pcm'), 'out.mp4');
  await processVideo({ input, output: out, transform: (f) => f });
  assert.equal(await audioCodec(out), 'aac');
  const [a, b] = [await audioSeconds(input), await audioSeconds(out)];
  assert.ok(Math.abs(a - b) <= 2048 / 44100, `audio ${b}s vs source ${a}s`);
});

test('odd input sizes come out one pixel larger; other sizes need outWidth/outHeight', async () => {
  const input = await makeClip(dir, 'odd.mkv', { size: '65x47', audio: false, seconds: 0.2 });
  const out = join(await outDir('odd'), 'out.mp4');
  const result = await processVideo({ input, output: out, transform: (f) => f });
  assert.deepEqual([result.width, result.height], [66, 48]);

  const half = join(await outDir('half'), 'half.mp4');
  const shrink = (f: Uint8Array): Uint8Array => {
    const o = new Uint8Array(32 * 23 * 3);
    for (let y = 0; y < 23; y += 1) for (let x = 0; x < 32; x += 1) o.set(f.subarray(((2 * y) * 65 + 2 * x) * 3, ((2 * y) * 65 + 2 * x) * 3 + 3), (y * 32 + x) * 3);
    return o;
  };
  await assert.rejects(processVideo({ input, output: half, transform: shrink }),
    (e: unknown) => e instanceof RangeError && /outWidth and outHeight/.test(e.message));
  assert.deepEqual(await listDir(join(dir, 'half')), []);
  const small = await processVideo({ input, output: half, transform: shrink, outWidth: 32, outHeight: 23 });
  assert.deepEqual([small.width, small.height], [32, 24]);
  await assert.rejects(processVideo({ input, output: half, transform: shrink, outWidth: 32 }), TypeError);
});

test('bad input: missing file, text named .mp4, truncated video; nothing written', async () => {
  const outputs = await outDir('bad');
  const output = join(outputs, 'out.mp4');
  const missing = join(dir, 'missing.mp4');
  await assert.rejects(processVideo({ input: missing, output, transform: (f) => f }), { name: 'FileError', message: `${missing}: no such file` });

  const text = join(dir, 'text.mp4');
  await writeFile(text, 'hello\n');
  await assert.rejects(processVideo({ input: text, output, transform: (f) => f }),
    (e: unknown) => e instanceof FileError && e.message.startsWith(`${text}: not a readable video (`));

  // moov atom at the end: a truncated file is unreadable from the start.
  const cutTail = await makeClip(dir, 'cut-tail.mp4');
  await truncate(cutTail, Math.floor((await stat(cutTail)).size / 2));
  await assert.rejects(processVideo({ input: cutTail, output, transform: (f) => f }),
    (e: unknown) => e instanceof FileError && e.message.startsWith(`${cutTail}: not a readable video (`));

  // moov at the start: frames decode until the cut; we refuse rather than write a short video.
  const cutMid = await makeClip(dir, 'cut-mid.mp4', { faststart: true });
  await truncate(cutMid, Math.floor((await stat(cutMid)).size / 2));
  let seen = 0;
  await assert.rejects(processVideo({ input: cutMid, output, transform: (f) => (seen += 1, f) }),
    (e: unknown) => e instanceof FileError && e.message.startsWith(`${cutMid}: decoding failed after `));
  assert.ok(seen > 0 && seen < 25, `transformed ${seen} frames before the error`);

  await assert.rejects(processVideo({ input: withAudio, output: withAudio, transform: (f) => f }), FileError);
  assert.deepEqual(await listDir(outputs), []);
  assertNoFfmpegLeft(await ffmpegsLeft());
});

test('an output that is the input (same path, another spelling, symlink, hard link) is refused before any work', async () => {
  const folder = await outDir('same');
  const input = join(folder, 'in.mp4');
  await copyFile(withAudio, input);
  await symlink(input, join(folder, 'symlink.mp4'));
  await link(input, join(folder, 'hardlink.mp4'));
  const before = await snapshotTree(folder);
  let transformed = 0;
  for (const output of [input, `${folder}/../same/./in.mp4`, join(folder, 'symlink.mp4'), join(folder, 'hardlink.mp4')]) {
    await assert.rejects(processVideo({ input, output, transform: (f) => (transformed += 1, f) }), {
      name: 'FileError',
      message: `${output}: is the input ${input}: pastiche never overwrites its input; choose another --output`,
    });
  }
  assert.equal(transformed, 0);
  assert.deepEqual(await snapshotTree(folder), before, 'the input is unchanged and nothing was written');
  assertNoFfmpegLeft(await ffmpegsLeft());
});

test('unwritable output path: error and no temp files', async () => {
  const blocker = join(await outDir('blocked'), 'not-a-dir');
  await writeFile(blocker, 'x');
  const output = join(blocker, 'out.mp4');
  await assert.rejects(processVideo({ input: withAudio, output, transform: (f) => f }),
    (e: unknown) => e instanceof FileError && e.message.startsWith(`${output}: cannot write here`));
  assert.deepEqual(await listDir(join(dir, 'blocked')), ['not-a-dir']);
});

test('FFMPEG_PATH to a missing binary: clear error', async () => {
  const saved = process.env.FFMPEG_PATH;
  process.env.FFMPEG_PATH = join(dir, 'no-such-ffmpeg');
  try {
    await assert.rejects(processVideo({ input: withAudio, output: join(dir, 'never.mp4'), transform: (f) => f }),
      { message: `ffmpeg not runnable at ${join(dir, 'no-such-ffmpeg')}: no such file (ENOENT). Install ffmpeg or set FFMPEG_PATH` });
  } finally {
    if (saved === undefined) delete process.env.FFMPEG_PATH;
    else process.env.FFMPEG_PATH = saved;
  }
});

test('abort mid-stream rejects with AbortError and leaves no files or processes', async () => {
  const outputs = await outDir('abort');
  const controller = new AbortController();
  await assert.rejects(processVideo({
    input: withAudio, output: join(outputs, 'out.mp4'), signal: controller.signal,
    transform: async (f, i) => {
      if (i === 5) controller.abort();
      await new Promise((r) => setTimeout(r, 5));
      return f;
    },
  }), AbortError);
  assert.deepEqual(await listDir(outputs), []);
  assertNoFfmpegLeft(await ffmpegsLeft());

  const early = new AbortController();
  early.abort();
  await assert.rejects(processVideo({ input: withAudio, output: join(outputs, 'out.mp4'), signal: early.signal, transform: (f) => f }), AbortError);
});

test('an error thrown by transform is rethrown and cleans up', async () => {
  const outputs = await outDir('throws');
  await assert.rejects(processVideo({
    input: withAudio, output: join(outputs, 'out.mkv'),
    transform: (f, i) => { if (i === 3) throw new Error('model failed'); return f; },
  }), { message: 'model failed' });
  assert.deepEqual(await listDir(outputs), []);
  assertNoFfmpegLeft(await ffmpegsLeft());
});

const fox = dataPath('video/fox.mp4');
test('shared fox.mp4: the first 10 frames go through, then abort cleans up', { skip: fox.skip }, async () => {
  const outputs = await outDir('fox');
  const controller = new AbortController();
  let n = 0;
  // Only a smoke test of a real file: stop early to keep the suite fast.
  await assert.rejects(processVideo({
    input: fox.path, output: join(outputs, 'fox.mp4'), signal: controller.signal,
    transform: (f) => { n += 1; if (n === 10) controller.abort(); return f; },
  }), AbortError);
  assert.equal(n, 10);
  assert.deepEqual(await listDir(outputs), []);
});
