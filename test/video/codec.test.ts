import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { chmod, stat, truncate, writeFile } from 'node:fs/promises';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { decodeFrames } from '../../src/video/decode.js';
import { createEncoder, evenSize } from '../../src/video/encode.js';
import { countFrames, probeVideo } from '../../src/video/ffmpeg.js';
import { AbortError, FileError } from '../../src/util/errors.js';
import { childFfmpegs, ffmpegsLeft, firstFrame, listDir, makeClip, meanAbsDiff, tempDir } from './clips.js';

/** `left` is null where /proc is missing and nothing can be checked. */
function assertNoFfmpegLeft(left: number | null): void {
  if (left !== null) assert.equal(left, 0, 'ffmpeg processes left running');
}

let dir = '';
let clip = '';
let cleanup = async (): Promise<void> => {};
before(async () => {
  ({ dir, cleanup } = await tempDir());
  clip = await makeClip(dir, 'src.mp4', { audio: false });
});
after(() => cleanup());

test('decodeFrames yields every frame at the probed size', async () => {
  let n = 0;
  for await (const frame of decodeFrames(clip)) {
    assert.equal(frame.length, 64 * 48 * 3);
    n += 1;
  }
  assert.equal(n, 25);
});

test('decodeFrames scales to a requested size', async () => {
  const sizes = new Set<number>();
  let n = 0;
  for await (const frame of decodeFrames(clip, { width: 32, height: 24 })) {
    sizes.add(frame.length);
    n += 1;
  }
  assert.deepEqual([...sizes], [32 * 24 * 3]);
  assert.equal(n, 25);
  await assert.rejects(decodeFrames(clip, { width: 32 }).next(), TypeError);
  await assert.rejects(decodeFrames(clip, { width: 0, height: 24 }).next(), RangeError);
});

test('breaking out of decodeFrames kills ffmpeg', async () => {
  // Long enough (5.8 MB of RGB) that ffmpeg is still blocked on the full pipe when we break.
  const long = await makeClip(dir, 'long.mp4', { size: '160x120', seconds: 4, audio: false });
  for await (const frame of decodeFrames(long)) {
    assert.ok(frame.length > 0);
    const running = childFfmpegs();
    if (running !== null) assert.equal(running, 1); // the check below can see ffmpeg at all
    break;
  }
  assertNoFfmpegLeft(await ffmpegsLeft());
});

test('decodeFrames rejects with AbortError when aborted mid-stream', async () => {
  const controller = new AbortController();
  let n = 0;
  await assert.rejects((async () => {
    for await (const _frame of decodeFrames(clip, { signal: controller.signal })) {
      n += 1;
      if (n === 3) controller.abort();
    }
  })(), AbortError);
  assert.equal(n, 3);
  assertNoFfmpegLeft(await ffmpegsLeft());
});

test('decodeFrames throws a FileError for a truncated file', async () => {
  const cut = await makeClip(dir, 'cut.mp4', { audio: false, faststart: true });
  await truncate(cut, Math.floor((await stat(cut)).size / 2));
  let n = 0;
  await assert.rejects((async () => {
    for await (const _frame of decodeFrames(cut)) n += 1;
  })(), (e: unknown) => e instanceof FileError && e.message.startsWith(`${cut}: decoding failed after ${n} frames (`));
  assert.ok(n < 25, `decoded ${n} frames`);
});

test('encoder writes a video with the exact frames and rate, atomically', async () => {
  const output = join(dir, 'enc', 'out.mp4');
  const frames = [];
  for await (const frame of decodeFrames(clip)) frames.push(frame);
  const encoder = await createEncoder({ output, width: 64, height: 48, fps: '30000/1001', crf: 10, preset: 'ultrafast' });
  for (const frame of frames) await encoder.write(frame);
  const during = await listDir(join(dir, 'enc'));
  assert.equal(during.length, 1);
  assert.match(during[0] as string, /^\.out\.pastiche-tmp-\d+-[0-9a-f]+\.mp4$/);
  await encoder.finish();
  assert.deepEqual(await listDir(join(dir, 'enc')), ['out.mp4']);
  const info = await probeVideo(output);
  assert.deepEqual([info.width, info.height, info.fps, info.hasAudio], [64, 48, '30000/1001', false]);
  assert.equal(await countFrames(output), 25);
  assert.ok(meanAbsDiff(await firstFrame(output), frames[0] as Uint8Array) < 6);
});

test('encoder pads odd sizes by repeating the edge', async () => {
  assert.deepEqual(evenSize(65, 47), { width: 66, height: 48 });
  const output = join(dir, 'odd.mkv');
  const frame = new Uint8Array(65 * 47 * 3).fill(200);
  const encoder = await createEncoder({ output, width: 65, height: 47, fps: '25' });
  assert.deepEqual([encoder.width, encoder.height], [66, 48]);
  for (let i = 0; i < 3; i += 1) await encoder.write(frame);
  await encoder.finish();
  const decoded = await firstFrame(output);
  assert.equal(decoded.length, 66 * 48 * 3);
  // A black pad would pull the last column/row far below 200.
  const min = decoded.reduce((m, v) => Math.min(m, v), 255);
  assert.ok(min > 190, `darkest value ${min}`);
});

test('encoder validates its options and frames', async () => {
  const output = join(dir, 'v', 'x.mp4');
  await assert.rejects(createEncoder({ output: join(dir, 'x.webm'), width: 8, height: 8, fps: '25' }),
    { name: 'FileError', message: `${join(dir, 'x.webm')}: unsupported video container '.webm' (use .mp4, .m4v, .mov, .mkv)` });
  await assert.rejects(createEncoder({ output, width: 8, height: 8, fps: '29.97' }), TypeError);
  await assert.rejects(createEncoder({ output, width: 8, height: 8, fps: '25/0' }), TypeError);
  await assert.rejects(createEncoder({ output, width: 8.5, height: 8, fps: '25' }), TypeError);
  await assert.rejects(createEncoder({ output, width: 8, height: 8, fps: '25', crf: 60 }), RangeError);
  const encoder = await createEncoder({ output, width: 8, height: 8, fps: '25' });
  await assert.rejects(encoder.write(new Uint8Array(10)), RangeError);
  await encoder.abort();
  await encoder.abort();
  await assert.rejects(encoder.write(new Uint8Array(8 * 8 * 3)), AbortError);
  assert.ok(!existsSync(join(dir, 'v')), 'the folder made for the output is gone');
});

test('encoder: ffmpeg dying mid-stream rejects with its last message and leaves nothing', async () => {
  const fake = join(dir, 'fake-ffmpeg.sh');
  await writeFile(fake, '#!/bin/sh\nhead -c 20000 >/dev/null\necho "[libx264 @ 0x1234] simulated encoder crash" >&2\nexit 1\n');
  await chmod(fake, 0o755);
  const output = join(dir, 'crash', 'out.mp4');
  const saved = process.env.FFMPEG_PATH;
  process.env.FFMPEG_PATH = fake;
  try {
    const encoder = await createEncoder({ output, width: 64, height: 48, fps: '25' });
    const expected = { name: 'FileError', message: `${output}: encoding failed (simulated encoder crash)` };
    await assert.rejects((async () => {
      for (let i = 0; i < 50; i += 1) await encoder.write(new Uint8Array(64 * 48 * 3));
      await encoder.finish();
    })(), expected);
    assert.ok(!existsSync(join(dir, 'crash')), 'the folder made for the output is gone');
    await assert.rejects(encoder.write(new Uint8Array(64 * 48 * 3)), expected);
    await assert.rejects(encoder.finish(), expected);
    await encoder.abort();
  } finally {
    if (saved === undefined) delete process.env.FFMPEG_PATH;
    else process.env.FFMPEG_PATH = saved;
  }
  assert.ok(!existsSync(join(dir, 'crash')), 'the folder made for the output is gone');
});

test('encoder: unwritable output path fails before starting ffmpeg', async () => {
  const blocker = join(dir, 'a-file');
  await writeFile(blocker, 'x');
  await assert.rejects(createEncoder({ output: join(blocker, 'out.mp4'), width: 8, height: 8, fps: '25' }),
    (e: unknown) => e instanceof FileError && e.message === `${join(blocker, 'out.mp4')}: cannot write here: ${blocker} is a file, not a folder`);
});
