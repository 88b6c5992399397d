/**
 * `pastiche live` run as users run it, on ffmpeg's synthetic sources with a small random-weight
 * network: --frames/--duration give that many frames (counted by decoding the file), each frame is
 * the model's stylisation of the source frame (against the same model run in-process), stdin takes
 * a container or raw frames, the output can be a stream (a TCP receiver here) or a window (a stand-in
 * ffplay on PATH), Ctrl-C and SIGTERM finish the file, and bad input (unknown model, missing device,
 * a stream that cannot be opened or that ends, no ffplay, no ffmpeg) gets one clear line.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { chmod, readFile, writeFile } from 'node:fs/promises';
import { existsSync } from 'node:fs';
import { createServer as createHttpServer } from 'node:http';
import { createServer as createTcpServer, type AddressInfo, type Server } from 'node:net';
import { join } from 'node:path';
import { buildTransformer, initTransformerParams, resolveArchitecture } from '../../src/nets/transformer.js';
import { toOnnxBytes } from '../../src/graph/onnx.js';
import { openStyleModel } from '../../src/style/model.js';
import { stylizeImage } from '../../src/style/transfer.js';
import { toInterleaved, toRgbImage } from '../../src/image/pixels.js';
import { countFrames, probeVideo } from '../../src/video/ffmpeg.js';
import { decodeFrames } from '../../src/video/decode.js';
import { clearModelCache } from '../../src/runtime/index.js';
import { main, program } from '../../src/cli/main.js';
import type { Command } from 'commander';
import { runCli, type CliResult } from '../helpers/cli.js';
import { projectRoot } from '../helpers/data.js';
import { listTree, scratch, tempLeftovers } from '../helpers/files.js';
import { psnr } from '../helpers/compare.js';
import { ffmpeg } from '../video/clips.js';

/** testsrc2's first frame for ever (every source frame the same picture), and testsrc2 itself. */
const STILL = 'testsrc2=size=96x64:rate=25,loop=loop=-1:size=1';
const MOVING = 'testsrc2=size=96x64:rate=25';
const FRAME_BYTES = 96 * 64 * 3;

let dir: Awaited<ReturnType<typeof scratch>>;
let env: Record<string, string>;
let model: string;
let still: Uint8Array;

before(async () => {
  dir = await scratch('pastiche-cli-live-');
  env = { PASTICHE_HOME: dir.path('home') };
  // A seeded random-weight network of the real-time architecture, small enough to run in ~1 ms.
  const { config } = resolveArchitecture('realtime', { widths: [8, 8, 16], residualBlocks: 1 });
  model = dir.path('tiny.onnx');
  await writeFile(model, toOnnxBytes(buildTransformer(config, initTransformerParams(config, 7)).graph, { metadata: { 'pastiche.architecture': 'realtime' } }));
  still = new Uint8Array(await ffmpeg(['-f', 'lavfi', '-i', STILL, '-frames:v', '1', '-f', 'rawvideo', '-pix_fmt', 'rgb24', '-']));
});

after(async () => {
  clearModelCache();
  await dir.cleanup();
});

const show = (r: CliResult): string => `exit ${r.code}${r.signal ? ` (${r.signal})` : ''}\nstdout: ${r.stdout}\nstderr: ${r.stderr}`;

/** BT.601 luma of an RGB24 frame. */
function luma(rgb: Uint8Array): Float32Array {
  const y = new Float32Array(rgb.length / 3);
  for (let i = 0; i < y.length; i++) y[i] = 0.299 * rgb[3 * i]! + 0.587 * rgb[3 * i + 1]! + 0.114 * rgb[3 * i + 2]!;
  return y;
}

/**
 * Every decoded frame's luma PSNR against `expected`. Luma, because H.264 in 4:2:0 keeps it at full
 * resolution but halves colour's: a random network's output is pixel-sized colour noise, which the
 * chroma subsampling alone takes to ~13 dB in RGB while luma stays at ~34 dB.
 */
async function framePsnrs(path: string, expected: Uint8Array): Promise<number[]> {
  const out: number[] = [];
  for await (const frame of decodeFrames(path)) out.push(psnr(luma(frame), luma(expected)));
  return out;
}

test('live --help names every flag, each with its default (in-process)', () => {
  const live = program().commands.find((c) => c.name() === 'live') as Command;
  const help = live.helpInformation().replace(/\s+/g, ' ');
  for (const flag of ['--model', '--output', '--window', '--format', '--input-size', '--input-rate', '--size', '--frames', '--duration',
    '--strength', '--preserve-colors', '--temporal', '--margin', '--crf', '--json', '--threads', '--execution-provider']) {
    assert.match(help, new RegExp(`${flag}\\b`), `live --help lacks ${flag}`);
  }
  for (const option of live.options) {
    if (['--json', '--window', '--model'].includes(option.long ?? '')) continue;
    assert.match(option.description + (option.defaultValue === undefined ? '' : ` ${option.defaultValue}`), /default|cpu/, `${option.long} states no default`);
  }
  assert.match(help, /--threads <n> CPU threads per operation \(default: every available core/);
});

test('live --frames N on a lavfi source: N frames, each the model\'s stylisation of the source frame', async () => {
  const out = dir.path('still.mp4');
  const r = await runCli(['live', '--format', 'lavfi', STILL, '-m', model, '--frames', '8', '-o', out, '--json'], { env });
  assert.equal(r.code, 0, show(r));
  const result = JSON.parse(r.stdout) as { frames: number; stylized: number; dropped: number; stoppedBy: string; fps: string };
  assert.equal(result.frames, 8);
  assert.equal(result.stoppedBy, 'frames');
  assert.equal(await countFrames(out), 8);
  const info = await probeVideo(out);
  assert.deepEqual([info.width, info.height, info.fps], [96, 64, '25/1']);

  const style = await openStyleModel(model, { threads: 1 });
  const expected = toInterleaved(await stylizeImage(style, toRgbImage(still, 96, 64), { tile: 0 }));
  const againstModel = await framePsnrs(out, expected);
  const againstSource = await framePsnrs(out, still);
  // Bound for H.264 (crf 18) on a random network's busy output: measured 34.1 dB, against 8.0 dB for the source.
  for (const [i, db] of againstModel.entries()) {
    assert.ok(db > 30, `frame ${i}: ${db.toFixed(1)} dB against the in-process stylisation`);
    assert.ok(againstSource[i]! < db - 10, `frame ${i}: ${againstSource[i]!.toFixed(1)} dB against the source itself`);
  }
});

test('live with --strength 0, --temporal, --preserve-colors, --margin, --crf, --threads, --duration: the source comes back', async () => {
  const out = dir.path('strength0.mkv');
  const r = await runCli(['live', '--format', 'lavfi', STILL, '-m', model, '--duration', '0.2', '--strength', '0', '--temporal', '0.5',
    '--preserve-colors', 'histogram', '--margin', '0', '--crf', '10', '--threads', '1', '--size', '96', '-o', out], { env });
  assert.equal(r.code, 0, show(r));
  assert.match(r.stderr, /strength0\.mkv: 5 frames 96x64 @ 25\/1 \(\d+ stylised, \d+ dropped; in [\d.]+ fps, out [\d.]+ fps, latency \d+ ms\)/);
  assert.equal(await countFrames(out), 5);
  for (const db of await framePsnrs(out, still)) assert.ok(db > 30, `${db.toFixed(1)} dB against the source`);
});

/** Runs the CLI with `input` written to its stdin. */
function runWithStdin(args: readonly string[], input: Uint8Array): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [join(projectRoot, 'bin', 'pastiche.js'), ...args], { env: { ...process.env, ...env }, stdio: ['pipe', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (c: Buffer) => (stdout += c.toString()));
    child.stderr.on('data', (c: Buffer) => (stderr += c.toString()));
    child.stdin.on('error', () => {});
    child.stdin.end(input);
    const timer = setTimeout(() => child.kill('SIGKILL'), 60_000);
    child.on('error', reject);
    child.on('close', (code) => {
      clearTimeout(timer);
      resolve({ code, stdout, stderr });
    });
  });
}

test('live - reads a container or raw RGB24 frames on stdin; it ends when stdin does, with every frame written', async () => {
  const clip = dir.path('piped.mkv');
  await ffmpeg(['-f', 'lavfi', '-i', MOVING, '-frames:v', '15', '-c:v', 'libx264', '-preset', 'ultrafast', '-y', clip]);
  const fromContainer = dir.path('from-container.mp4');
  const a = await runWithStdin(['live', '-', '-m', model, '-o', fromContainer], await readFile(clip));
  assert.equal(a.code, 0, a.stderr);
  assert.equal(await countFrames(fromContainer), 15);

  const raw = new Uint8Array(await ffmpeg(['-f', 'lavfi', '-i', MOVING, '-frames:v', '12', '-f', 'rawvideo', '-pix_fmt', 'rgb24', '-']));
  assert.equal(raw.length, 12 * FRAME_BYTES);
  const fromRaw = dir.path('from-raw.mp4');
  const b = await runWithStdin(['live', '-', '--format', 'rawvideo', '--input-size', '96x64', '--input-rate', '12', '-m', model, '-o', fromRaw], raw);
  assert.equal(b.code, 0, b.stderr);
  assert.equal(await countFrames(fromRaw), 12);
  assert.equal((await probeVideo(fromRaw)).fps, '12/1');
});

test('live -o tcp://…: an H.264 stream in MPEG-TS reaches the receiver with every frame', async () => {
  const chunks: Buffer[] = [];
  const server: Server = createTcpServer((socket) => socket.on('data', (c: Buffer) => chunks.push(c)));
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  try {
    const { port } = server.address() as AddressInfo;
    const r = await runCli(['live', '--format', 'lavfi', MOVING, '-m', model, '--frames', '10', '-o', `tcp://127.0.0.1:${port}`], { env });
    assert.equal(r.code, 0, show(r));
  } finally {
    await new Promise((resolve) => server.close(resolve));
  }
  const received = dir.path('received.ts');
  await writeFile(received, Buffer.concat(chunks));
  assert.equal(await countFrames(received), 10);
  assert.equal((await probeVideo(received)).videoCodec, 'h264');
});

/** A stand-in ffplay: records its arguments, then copies stdin to a file (at most `bytes` of it, then exits 0). */
async function fakeFfplay(name: string, bytes?: number): Promise<{ path: string; args: string; frames: string }> {
  const bin = dir.path(name);
  await import('node:fs/promises').then((fs) => fs.mkdir(bin, { recursive: true }));
  const args = join(bin, 'args');
  const frames = join(bin, 'frames');
  const copy = bytes === undefined ? `cat > '${frames}'` : `head -c ${bytes} > '${frames}'`;
  await writeFile(join(bin, 'ffplay'), `#!/bin/sh\necho "$@" > '${args}'\n${copy}\nexit 0\n`);
  await chmod(join(bin, 'ffplay'), 0o755);
  return { path: `${bin}:${process.env.PATH}`, args, frames };
}

test('live --window pipes raw frames into ffplay; closing the window (ffplay exiting) ends the run cleanly', async () => {
  const shown = await fakeFfplay('ffplay-all');
  const r = await runCli(['live', '--format', 'lavfi', MOVING, '-m', model, '--frames', '6', '--window'], { env: { ...env, PATH: shown.path } });
  assert.equal(r.code, 0, show(r));
  assert.equal((await readFile(shown.frames)).length, 6 * FRAME_BYTES);
  assert.match(await readFile(shown.args, 'utf8'), /-f rawvideo -pixel_format rgb24 -video_size 96x64 -framerate 25\/1 -i pipe:0/);

  const closed = await fakeFfplay('ffplay-closes', 3 * FRAME_BYTES);
  const c = await runCli(['live', '--format', 'lavfi', MOVING, '-m', model, '-o', ':window', '--json'], { env: { ...env, PATH: closed.path } });
  assert.equal(c.code, 0, show(c));
  assert.equal((JSON.parse(c.stdout) as { stoppedBy: string }).stoppedBy, 'window');
});

test('Ctrl-C and SIGTERM stop live cleanly: the file is finished and playable, exit 130 / 143, no temp file', async () => {
  for (const [signal, code] of [['SIGINT', 130], ['SIGTERM', 143]] as const) {
    const folder = dir.path(`stopped-${signal}`);
    const out = join(folder, 'out.mp4');
    const r = await runCli(['live', '--format', 'lavfi', MOVING, '-m', model, '-o', out], {
      env, onSpawn: (child) => {
        // Once the encoder's temporary file exists frames are flowing; let a few through first.
        const poll = setInterval(() => {
          void listTree(folder).then((files) => {
            if (tempLeftovers(files).length === 0) return;
            clearInterval(poll);
            setTimeout(() => child.kill(signal), 600);
          });
        }, 20);
        child.on('exit', () => clearInterval(poll));
      },
    });
    assert.equal(r.code, code, show(r));
    assert.deepEqual(await listTree(folder), ['out.mp4'], 'the finished file and nothing else');
    assert.ok((await countFrames(out)) > 0);
  }
});

/** Runs main() here with `vars` set in the environment, and what it wrote to stderr. */
async function mainInProcess(args: readonly string[], vars: Record<string, string>): Promise<{ code: number; stderr: string }> {
  const saved = Object.fromEntries(Object.keys(vars).map((k) => [k, process.env[k]]));
  const write = process.stderr.write;
  let stderr = '';
  Object.assign(process.env, vars);
  process.stderr.write = ((chunk: string | Uint8Array) => {
    stderr += chunk.toString();
    return true;
  }) as typeof process.stderr.write;
  try {
    return { code: await main(['node', 'pastiche', ...args]), stderr };
  } finally {
    process.stderr.write = write;
    for (const [k, v] of Object.entries(saved)) {
      if (v === undefined) delete process.env[k];
      else process.env[k] = v;
    }
  }
}

/** Serves `body` at /clip.ts over HTTP (404 elsewhere) while `run` runs. */
async function withHttp<T>(body: Uint8Array, run: (base: string) => Promise<T>): Promise<T> {
  const server = createHttpServer((req, res) => {
    if (req.url !== '/clip.ts') res.writeHead(404).end();
    else res.writeHead(200, { 'content-type': 'video/mp2t' }).end(body);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  try {
    return await run(`http://127.0.0.1:${(server.address() as AddressInfo).port}`);
  } finally {
    await new Promise((resolve) => server.close(resolve));
  }
}

test('a network stream that ends mid-run: exit 1, "the stream ended after N frames", the N frames kept', async () => {
  const clip = dir.path('stream.ts');
  await ffmpeg(['-f', 'lavfi', '-i', MOVING, '-frames:v', '40', '-c:v', 'libx264', '-preset', 'ultrafast', '-g', '5', '-f', 'mpegts', '-y', clip]);
  const out = dir.path('ended.mp4');
  const r = await withHttp(await readFile(clip), (base) => runCli(['live', `${base}/clip.ts`, '-m', model, '-o', out], { env }));
  assert.equal(r.code, 1, show(r));
  const m = /^pastiche: http:\/\/127\.0\.0\.1:\d+\/clip\.ts: the stream ended after (\d+) frames; the (\d+) frames written are in (.*)$/.exec(r.errorLines.at(-1) ?? '');
  assert.ok(m !== null, show(r));
  assert.equal(m[2], m[1], 'every frame received is in the file');
  assert.equal(m[1], '40', 'the clip served has 40 frames');
  assert.equal(await countFrames(out), 40);
  // Asked for fewer frames than the stream has, it is not an error.
  const r2 = await withHttp(await readFile(clip), (base) => runCli(['live', `${base}/clip.ts`, '-m', model, '--frames', '3', '-o', dir.path('three.mp4')], { env }));
  assert.equal(r2.code, 0, show(r2));
});

test('bad input gets one clear line and a non-zero exit, and writes nothing', async () => {
  const out = dir.path('bad', 'never.mp4');
  const closedPort = await new Promise<number>((resolve) => {
    const s = createTcpServer().listen(0, '127.0.0.1', () => {
      const { port } = s.address() as AddressInfo;
      s.close(() => resolve(port));
    });
  });
  // Usage errors of the source and output spellings are covered in test/video/live.test.ts. One case
  // runs the real binary; the others run main() in this process (each spawn costs seconds of start-up).
  const spawned = await runCli(['live', '/dev/video9', '-m', model, '-o', out], { env });
  assert.equal(spawned.code, 1, show(spawned));
  assert.match(spawned.errorLines.at(-1) ?? '', /^pastiche: \/dev\/video9: no such device/);
  const cases: { args: string[]; env?: Record<string, string>; code: number; message: RegExp }[] = [
    { args: ['--format', 'lavfi', STILL, '-m', 'no-such-style', '-o', out], code: 1, message: /^pastiche: No model named 'no-such-style' in the store/ },
    { args: [`http://127.0.0.1:${closedPort}/live.ts`, '-m', model, '-o', out], code: 1, message: /^pastiche: cannot open http:\/\/127\.0\.0\.1:\d+\/live\.ts \(.*Connection refused\)$/ },
    { args: ['--format', 'lavfi', STILL, '-m', model, '-o', out], env: { FFMPEG_PATH: '/nonexistent/ffmpeg' }, code: 1, message: /^pastiche: ffmpeg not runnable at \/nonexistent\/ffmpeg: no such file \(ENOENT\)/ },
    { args: ['--format', 'lavfi', STILL, '-m', model, '--window'], env: { PATH: '/nonexistent' }, code: 1, message: /^pastiche: ffplay is not installed: the live window needs it/ },
    { args: ['--format', 'lavfi', STILL, '-m', model, '-o', dir.path('bad', 'x.avi')], code: 1, message: /x\.avi: unsupported video container '\.avi'/ },
    { args: ['--format', 'lavfi', STILL, '-m', model, '--window', '-o', out], code: 2, message: /Expected either --window or -o, not both/ },
    { args: ['--format', 'lavfi', STILL, '-m', model, '--frames', '0', '-o', out], code: 2, message: /Expected a number of at least 1 for --frames but received 0/ },
  ];
  for (const c of cases) {
    const r = await mainInProcess(['live', ...c.args], { ...env, ...c.env });
    assert.equal(r.code, c.code, `${c.args.join(' ')}\n${r.stderr}`);
    assert.match(r.stderr.trim().split('\n').at(-1) ?? '', c.message, r.stderr);
  }
  const notFound = await withHttp(new Uint8Array(0), (base) => mainInProcess(['live', `${base}/missing.ts`, '-m', model, '-o', out], env));
  assert.equal(notFound.code, 1, notFound.stderr);
  assert.match(notFound.stderr.trim(), /^pastiche: cannot open http:\/\/127\.0\.0\.1:\d+\/missing\.ts \(.*404 Not Found\)$/);
  assert.equal(existsSync(dir.path('bad')), false, 'no output folder was made');
});
