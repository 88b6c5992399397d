/**
 * Live processing (src/video/latest.ts, live-source.ts, live-sink.ts, live.ts): the newest-frame
 * slot drops what nobody took and counts it; sources and outputs are told apart by their spelling;
 * runLive on ffmpeg's synthetic sources writes the asked number of frames, each the transform of a
 * source frame (checked against the same transform run here), repeats the last output for dropped
 * frames so the file keeps the source's clock, and leaves nothing behind when it fails.
 */
import { test, after, before } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { createServer, type AddressInfo } from 'node:net';
import { latestOnly } from '../../src/video/latest.js';
import { planLiveSource, DEFAULT_CAPTURE_RATE } from '../../src/video/live-source.js';
import { planLiveOutput, STREAM_OUTPUT_FORMATS } from '../../src/video/live-sink.js';
import { runLive } from '../../src/video/live.js';
import { countFrames, probeVideo } from '../../src/video/ffmpeg.js';
import { decodeFrames } from '../../src/video/decode.js';
import { FileError } from '../../src/util/errors.js';
import { psnr } from '../helpers/compare.js';
import { ffmpeg, ffmpegsLeft, invert, listDir, tempDir } from './clips.js';

/** testsrc2's first frame, repeated for ever: every frame the source delivers is the same picture. */
const STILL = 'testsrc2=size=96x64:rate=25,loop=loop=-1:size=1';
/** testsrc2 itself: a different picture every frame. */
const MOVING = 'testsrc2=size=96x64:rate=25';

let dir: Awaited<ReturnType<typeof tempDir>>;
before(async () => {
  dir = await tempDir();
});
after(async () => {
  await dir.cleanup();
});

test('latestOnly: a new item replaces the one not taken, and the replaced ones are counted', async () => {
  const slot = latestOnly<number>();
  assert.equal(slot.push(1), undefined);
  assert.equal(slot.push(2), 1, 'the replaced item comes back, for reuse');
  assert.equal(slot.push(3), 2);
  assert.deepEqual(await slot.next(), { value: 3, dropped: 2 });
  // A waiting consumer gets the next item at once: nothing dropped.
  const waiting = slot.next();
  slot.push(4);
  assert.deepEqual(await waiting, { value: 4, dropped: 0 });
  slot.push(5);
  slot.push(6);
  slot.end();
  assert.deepEqual(await slot.next(), { value: 6, dropped: 1 }, 'a pending item is still handed out after end()');
  assert.equal(await slot.next(), null);
  assert.equal(slot.pushed, 6);
  assert.equal(slot.dropped, 3);
  assert.throws(() => slot.push(7), /push\(\) after end\(\)/);
  const empty = latestOnly<number>();
  const pending = empty.next();
  empty.end();
  assert.equal(await pending, null, 'a consumer waiting when the source ends gets null');
});

test('planLiveSource: devices, the screen, streams, lavfi, stdin and files, with low-latency capture options', () => {
  const camera = planLiveSource('/dev/video0', { inputSize: '1280x720' });
  assert.equal(camera.kind, 'device');
  assert.equal(camera.endless, true);
  assert.deepEqual(camera.args, ['-f', 'v4l2', '-framerate', String(DEFAULT_CAPTURE_RATE), '-video_size', '1280x720', '-i', '/dev/video0']);
  const display = process.env.DISPLAY;
  try {
    process.env.DISPLAY = ':1';
    assert.deepEqual(planLiveSource('screen', { inputRate: 15 }).args, ['-f', 'x11grab', '-framerate', '15', '-i', ':1']);
    delete process.env.DISPLAY;
    assert.throws(() => planLiveSource('screen'), /no \$DISPLAY to capture/);
  } finally {
    if (display === undefined) delete process.env.DISPLAY;
    else process.env.DISPLAY = display;
  }
  assert.deepEqual(planLiveSource('0', { format: 'avfoundation' }).args.slice(0, 2), ['-f', 'avfoundation']);
  for (const url of ['rtsp://cam.local/stream', 'http://127.0.0.1:8080/x.ts', 'udp://@:1234', 'rtmp://host/live/key']) {
    const plan = planLiveSource(url);
    assert.equal(plan.kind, 'stream', url);
    assert.equal(plan.endless, true, url);
    assert.deepEqual(plan.args, ['-i', url]);
  }
  assert.throws(() => planLiveSource('gopher://host/x'), { name: 'RangeError', message: /Expected a stream URL .* for source but received 'gopher:\/\/host\/x'/ });
  const lavfi = planLiveSource(MOVING, { format: 'lavfi' });
  assert.deepEqual([lavfi.kind, lavfi.endless], ['lavfi', false]);
  assert.deepEqual(lavfi.args, ['-re', '-f', 'lavfi', '-i', MOVING], 'read at the rate the graph makes frames');
  assert.deepEqual(planLiveSource('-').args, ['-i', 'pipe:0']);
  assert.deepEqual(planLiveSource('-', { format: 'rawvideo', inputSize: '96x64', inputRate: 25 }).args,
    ['-f', 'rawvideo', '-pixel_format', 'rgb24', '-video_size', '96x64', '-framerate', '25', '-i', 'pipe:0']);
  assert.throws(() => planLiveSource('-', { format: 'rawvideo' }), { name: 'TypeError', message: 'Expected an input size (--input-size WxH) for raw frames on stdin' });
  assert.throws(() => planLiveSource('-', { format: 'rawvideo', inputSize: '96 by 64' }), /Expected a size like 640x480 for inputSize but received '96 by 64'/);
  const file = planLiveSource('clip.mp4');
  assert.deepEqual([file.kind, file.endless], ['file', false]);
  assert.deepEqual(file.args, ['-re', '-protocol_whitelist', 'file,pipe', '-i', 'clip.mp4'], 'a file goes through the guarded input');
  assert.throws(() => planLiveSource('x', { format: 'vfw' as never }), /Expected one of 'v4l2', .* for format but received 'vfw'/);
});

test('planLiveOutput: a window by default or as :window, a stream in the container its protocol carries, else a file', () => {
  assert.equal(planLiveOutput(undefined).kind, 'window');
  assert.equal(planLiveOutput(':window').kind, 'window');
  assert.deepEqual(planLiveOutput('out.mp4'), { kind: 'file', path: 'out.mp4' });
  assert.deepEqual(planLiveOutput('rtmp://host/live/key'), { kind: 'stream', url: 'rtmp://host/live/key', format: 'flv' });
  assert.deepEqual(planLiveOutput('udp://239.0.0.1:1234'), { kind: 'stream', url: 'udp://239.0.0.1:1234', format: 'mpegts' });
  assert.equal(STREAM_OUTPUT_FORMATS.rtsp, 'rtsp');
  assert.throws(() => planLiveOutput('ftp://host/x.mp4'), { name: 'RangeError', message: /for output but received 'ftp:\/\/host\/x.mp4'/ });
});

test('runLive on a still lavfi source: --frames N gives N frames, each the transform of the source frame', async () => {
  const output = `${dir.dir}/still.mp4`;
  const [source] = await rawFrames(STILL, 1);
  const result = await runLive({ source: STILL, format: 'lavfi', output: planLiveOutput(output), frames: 12, transform: (frame) => invert(frame) });
  assert.equal(result.frames, 12);
  assert.equal(result.stoppedBy, 'frames');
  assert.deepEqual([result.width, result.height, result.fps], [96, 64, '25/1']);
  assert.equal(result.stylized + result.dropped >= result.frames, true, `${JSON.stringify(result)}`);
  assert.equal(await countFrames(output), 12);
  const expected = invert(source as Uint8Array);
  let n = 0;
  for await (const frame of decodeFrames(output)) {
    // H.264 in 4:2:0 at crf 18 on testsrc2's sharp colour edges: 31.8 dB measured, against 1.3 dB for the source itself.
    const db = psnr(frame, expected);
    assert.ok(db > 27, `frame ${n}: PSNR ${db.toFixed(1)} dB against the inverted source`);
    n += 1;
  }
  assert.equal(n, 12);
  assert.equal(await ffmpegsLeft(), 0);
});

test('runLive: --duration counts the source\'s frames, and a larger source is scaled to size (even sides)', async () => {
  const output = `${dir.dir}/duration.mkv`;
  const result = await runLive({ source: 'testsrc2=size=320x180:rate=25', format: 'lavfi', size: 100, output: planLiveOutput(output), duration: 0.4, transform: (f) => f });
  assert.equal(result.stoppedBy, 'duration');
  assert.equal(result.frames, 10);
  const info = await probeVideo(output);
  assert.deepEqual([info.width, info.height], [100, 56], '320x180 → 100x56.25, cropped to even');
  assert.equal(await countFrames(output), 10);
});

test('runLive: a finite source that ends writes every frame it delivered, dropped ones as repeats', async () => {
  const clip = `${dir.dir}/short.mkv`;
  await ffmpeg(['-f', 'lavfi', '-i', MOVING, '-frames:v', '15', '-c:v', 'libx264', '-preset', 'ultrafast', '-y', clip]);
  const output = `${dir.dir}/from-file.mp4`;
  // A slow transform makes the source run ahead; the output must still have one frame per source frame.
  const result = await runLive({
    source: clip, output: planLiveOutput(output), transform: async (f) => {
      await new Promise((r) => setTimeout(r, 60));
      return invert(f);
    },
  });
  assert.equal(result.stoppedBy, 'end');
  assert.equal(result.received, 15);
  assert.equal(result.frames, 15);
  assert.equal(result.frames - result.stylized <= result.dropped, true, JSON.stringify(result));
  assert.equal(await countFrames(output), 15);
  await assert.rejects(runLive({ source: clip, output: planLiveOutput(clip), transform: (f) => f }),
    (e: Error) => e instanceof FileError && /is the input|same file/.test(e.message), 'the output is never the input');
});

test('runLive: a transform returning the wrong size fails and leaves no file and no ffmpeg', async () => {
  const sub = `${dir.dir}/bad`;
  await assert.rejects(runLive({ source: STILL, format: 'lavfi', output: planLiveOutput(`${sub}/x.mp4`), frames: 5, transform: () => new Uint8Array(10) }),
    { name: 'RangeError', message: /Expected transform to return an RGB24 frame of 96x64x3 = 18432 bytes but received 10 bytes for frame 0/ });
  assert.equal(existsSync(sub), false, 'the folder made for the output is gone');
  assert.deepEqual((await listDir(dir.dir)).filter((f) => f.includes('pastiche-tmp')), []);
  assert.equal(await ffmpegsLeft(), 0);
});

test('runLive: a source ffmpeg cannot open gets its reason', async () => {
  await assert.rejects(runLive({ source: 'nosuchfilter=x', format: 'lavfi', output: planLiveOutput(`${dir.dir}/n.mp4`), frames: 1, transform: (f) => f }),
    /^Error: cannot open lavfi 'nosuchfilter=x' \(.*No such filter.*\)/);
  assert.equal(existsSync(`${dir.dir}/n.mp4`), false);
});

test('runLive: stop while a source has not answered yet (a camera that hangs) gives up at once, leaving no ffmpeg', async () => {
  // ffmpeg listening for a sender that never comes: it reports nothing until stopped.
  const port = await new Promise<number>((resolve) => {
    const probe = createServer().listen(0, '127.0.0.1', () => {
      const { port: free } = probe.address() as AddressInfo;
      probe.close(() => resolve(free));
    });
  });
  const stop = new AbortController();
  setTimeout(() => stop.abort(), 300);
  await assert.rejects(runLive({ source: `tcp://127.0.0.1:${port}?listen=1`, output: planLiveOutput(`${dir.dir}/hang.mp4`), stop: stop.signal, transform: (f) => f }),
    { name: 'AbortError' });
  assert.equal(existsSync(`${dir.dir}/hang.mp4`), false);
  assert.equal(await ffmpegsLeft(), 0);
});

/** The first `count` frames ffmpeg makes from a lavfi graph, as RGB24. */
async function rawFrames(graph: string, count: number): Promise<Uint8Array[]> {
  const bytes = await ffmpeg(['-f', 'lavfi', '-i', graph, '-frames:v', String(count), '-f', 'rawvideo', '-pix_fmt', 'rgb24', '-']);
  const size = bytes.length / count;
  return Array.from({ length: count }, (_, i) => new Uint8Array(bytes.subarray(i * size, (i + 1) * size)));
}
