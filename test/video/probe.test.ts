import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { checkFfmpeg, countFrames, ffmpegPath, parseRate, probeVideo } from '../../src/video/ffmpeg.js';
import { FileError } from '../../src/util/errors.js';
import { dataPath } from '../helpers/data.js';
import { ffmpeg, makeClip, tempDir } from './clips.js';

let dir = '';
let cleanup = async (): Promise<void> => {};
before(async () => ({ dir, cleanup } = await tempDir()));
after(() => cleanup());

async function withFfmpegPath<T>(value: string, run: () => Promise<T>): Promise<T> {
  const saved = process.env.FFMPEG_PATH;
  process.env.FFMPEG_PATH = value;
  try {
    return await run();
  } finally {
    if (saved === undefined) delete process.env.FFMPEG_PATH;
    else process.env.FFMPEG_PATH = saved;
  }
}

test('ffmpegPath prefers FFMPEG_PATH and checkFfmpeg reports the version', async () => {
  assert.equal(await withFfmpegPath('/opt/x/ffmpeg', async () => ffmpegPath()), '/opt/x/ffmpeg');
  assert.match(await checkFfmpeg(), /^ffmpeg version /);
});

test('probe reports size, fps, duration, audio and an exact frame count', async () => {
  const clip = await makeClip(dir, 'a.mp4');
  const info = await probeVideo(clip);
  assert.equal(info.width, 64);
  assert.equal(info.height, 48);
  assert.equal(info.fps, '25/1');
  assert.equal(info.frameRate, 25);
  assert.equal(info.rotation, 0);
  assert.equal(info.hasAudio, true);
  assert.deepEqual(info.audio, { codec: 'aac', stream: 1 });
  assert.ok(info.duration !== null && Math.abs(info.duration - 1) < 0.05, `duration ${info.duration}`);
  assert.ok(info.frameCount !== null && Math.abs(info.frameCount - 25) <= 1);
  assert.equal(await countFrames(clip), 25);
});

test('probe: 29.97 fps is 30000/1001, no audio, odd size', async () => {
  const clip = await makeClip(dir, 'ntsc.mkv', { size: '65x47', rate: '30000/1001', audio: false });
  const info = await probeVideo(clip);
  assert.equal(info.fps, '30000/1001');
  assert.equal(info.hasAudio, false);
  assert.equal(info.audio, null);
  assert.deepEqual([info.width, info.height], [65, 47]);
});

test('probe: a rotation tag swaps the decoded size', async () => {
  const clip = await makeClip(dir, 'plain.mp4', { audio: false });
  const rotated = join(dir, 'rotated.mp4');
  await ffmpeg(['-i', clip, '-c', 'copy', '-metadata:s:v:0', 'rotate=90', '-y', rotated]);
  const info = await probeVideo(rotated);
  assert.ok(info.rotation === 90 || info.rotation === 270, `rotation ${info.rotation}`);
  assert.deepEqual([info.codedWidth, info.codedHeight, info.width, info.height], [64, 48, 48, 64]);
});

test('parseRate turns printed rates into rationals', () => {
  assert.deepEqual(parseRate('25'), { fps: '25/1', value: 25 });
  assert.equal(parseRate('29.97')?.fps, '30000/1001');
  assert.equal(parseRate('23.98')?.fps, '24000/1001');
  assert.equal(parseRate('59.94')?.fps, '60000/1001');
  assert.equal(parseRate('12.50')?.fps, '25/2');
  assert.equal(parseRate('1k')?.fps, '1000/1');
  assert.equal(parseRate('abc'), null);
});

test('probe errors name the file and the problem', async () => {
  const missing = join(dir, 'missing.mp4');
  await assert.rejects(probeVideo(missing), (e: unknown) => e instanceof FileError && e.message === `${missing}: no such file`);

  const text = join(dir, 'notes.mp4');
  await writeFile(text, 'this is not a video\n');
  await assert.rejects(probeVideo(text), (e: unknown) =>
    e instanceof FileError && e.message.startsWith(`${text}: not a readable video (`) && /Invalid data/.test(e.message));

  const wav = join(dir, 'tone.wav');
  await ffmpeg(['-f', 'lavfi', '-i', 'sine', '-t', '0.2', '-y', wav]);
  await assert.rejects(probeVideo(wav), { name: 'FileError', message: `${wav}: has no video stream` });

  await assert.rejects(probeVideo(dir), { name: 'FileError', message: `${dir}: not a file` });
});

test('FFMPEG_PATH pointing nowhere gives a clear error', async () => {
  const clip = await makeClip(dir, 'b.mp4', { audio: false });
  await withFfmpegPath('/nonexistent/ffmpeg', async () => {
    const expected = (e: unknown): boolean => e instanceof Error &&
      e.message === 'ffmpeg not runnable at /nonexistent/ffmpeg: no such file (ENOENT). Install ffmpeg or set FFMPEG_PATH';
    await assert.rejects(checkFfmpeg(), expected);
    await assert.rejects(probeVideo(clip), expected);
  });
  const notExecutable = join(dir, 'ffmpeg-not-executable');
  await writeFile(notExecutable, 'not a program', { mode: 0o644 });
  await withFfmpegPath(notExecutable, () => assert.rejects(checkFfmpeg(),
    { message: `ffmpeg not runnable at ${notExecutable}: not executable (EACCES). Install ffmpeg or set FFMPEG_PATH` }));
});

const fox = dataPath('video/fox.mp4');
test('probe: shared fox.mp4', { skip: fox.skip }, async () => {
  const info = await probeVideo(fox.path);
  assert.deepEqual([info.width, info.height, info.fps, info.hasAudio], [640, 640, '30000/1001', false]);
});
