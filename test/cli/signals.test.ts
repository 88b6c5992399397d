/**
 * Signals during `pastiche stylize`, run as users run it: Ctrl-C, a double Ctrl-C, SIGTERM and SIGHUP
 * during a folder run and during a video exit 130/130/143/129 and leave no temporary file; a
 * temporary file left by a killed run (its owner process is gone) is removed by the next run.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync, type ChildProcess } from 'node:child_process';
import { mkdir, readdir, writeFile } from 'node:fs/promises';
import { existsSync } from 'node:fs';
import { constants as osConstants } from 'node:os';
import { writeImage } from '../../src/image/codec.js';
import { runCli, type CliResult } from '../helpers/cli.js';
import { listTree, scratch, tempLeftovers } from '../helpers/files.js';
import { zooLikeModel } from '../helpers/models.js';
import { noiseImage } from '../image/fixtures.js';
import { makeClip } from '../video/clips.js';

let dir: Awaited<ReturnType<typeof scratch>>;
let env: Record<string, string>;
let zoo: string;
let images: string;
let clip: string;

before(async () => {
  dir = await scratch('pastiche-cli-signals-');
  env = { PASTICHE_HOME: dir.path('home') };
  zoo = dir.path('zoo.onnx');
  await writeFile(zoo, zooLikeModel());
  images = dir.path('images');
  await mkdir(images);
  for (let i = 0; i < 60; i++) await writeImage(dir.path('images', `${String(i).padStart(2, '0')}.png`), noiseImage(400, 300, i + 1));
  clip = await makeClip(dir.dir, 'long.mp4', { size: '320x240', rate: '25', seconds: 40, audio: 'aac' });
});

after(async () => {
  await dir.cleanup();
});

/**
 * The status a shell reports: the exit code, or 128 + the signal's number for a process the signal
 * killed. Only a second signal may kill: one arriving while node itself exits (after the clean-up,
 * which the temp-file checks still verify) meets no handler, and shells report the same number.
 */
function shellStatus(r: CliResult, signals: readonly NodeJS.Signals[]): number | null {
  if (r.code !== null || r.signal === null || signals.length < 2) return r.code;
  return 128 + osConstants.signals[r.signal];
}

const show = (r: CliResult): string => `exit ${r.code}${r.signal ? ` (${r.signal})` : ''}\nstdout: ${r.stdout}\nstderr: ${r.stderr}`;

/**
 * Sends `signals` once `ready` sees the output folder's files; a second one 5 ms after the first,
 * before the clean-up can finish (one arriving while node itself exits kills it by the signal,
 * which shells report with the same 128 + number).
 */
function sendWhen(out: string, ready: (files: string[]) => boolean, signals: NodeJS.Signals[]) {
  return (child: ChildProcess): void => {
    const poll = setInterval(() => {
      void readdir(out).catch(() => [] as string[]).then((files) => {
        if (!ready(files)) return;
        clearInterval(poll);
        signals.forEach((s, i) => setTimeout(() => child.kill(s), i * 5));
      });
    }, 20);
    child.on('exit', () => clearInterval(poll));
  };
}

const cases: { name: string; signals: NodeJS.Signals[]; code: number }[] = [
  { name: 'SIGINT', signals: ['SIGINT'], code: 130 },
  { name: 'a double SIGINT', signals: ['SIGINT', 'SIGINT'], code: 130 },
  { name: 'SIGTERM', signals: ['SIGTERM'], code: 143 },
  { name: 'SIGHUP', signals: ['SIGHUP'], code: 129 },
  { name: 'a double SIGTERM', signals: ['SIGTERM', 'SIGTERM'], code: 143 },
];

for (const { name, signals, code } of cases) {
  test(`${name} during a folder run: exit ${code}, no temp file`, async () => {
    const out = dir.path('folder', name.replace(/ /g, '-'));
    const r = await runCli(['stylize', images, '-m', zoo, '-o', out, '--margin', '0'], {
      env,
      timeoutMs: 120_000,
      onSpawn: sendWhen(out, (files) => files.some((f) => f.endsWith('.png') && !f.startsWith('.')), signals),
    });
    assert.equal(shellStatus(r, signals), code, show(r));
    assert.deepEqual(tempLeftovers(await listTree(out)), []);
    if (signals[0] !== 'SIGINT') assert.doesNotMatch(r.stderr, /Ctrl-C/);
  });

  test(`${name} during a video: exit ${code}, no temp file`, async () => {
    const out = dir.path('video', name.replace(/ /g, '-'));
    await mkdir(out, { recursive: true });
    const r = await runCli(['stylize', clip, '-m', zoo, '-o', `${out}/styled.mp4`], {
      env,
      timeoutMs: 120_000,
      // The encoder's temporary file is there for the whole run.
      onSpawn: sendWhen(out, (files) => tempLeftovers(files).length > 0, signals),
    });
    assert.equal(shellStatus(r, signals), code, show(r));
    // ffmpeg could still be finishing a file it was left writing; give it the time it would take.
    await new Promise((resolve) => setTimeout(resolve, 500));
    assert.deepEqual(await listTree(out), []);
    if (signals[0] !== 'SIGINT') assert.doesNotMatch(r.stderr, /Ctrl-C/);
  });
}

/** The id of a process that has exited (ids are not reused this quickly). */
function deadPid(): number {
  const pid = spawnSync(process.execPath, ['-e', '0']).pid;
  assert.ok(pid !== undefined && pid > 0);
  return pid;
}

test('a stale temp file from a killed run is removed by the next run in that folder; a live one is kept', async () => {
  const out = dir.path('stale-image');
  await mkdir(out);
  const stale = `.a.pastiche-tmp-${deadPid()}-0123abcd.png`;
  const live = `.b.pastiche-tmp-${process.pid}-4567cdef.png`;
  await writeFile(`${out}/${stale}`, 'partial');
  await writeFile(`${out}/${live}`, 'being written');
  const r = await runCli(['stylize', `${images}/00.png`, '-m', zoo, '-o', `${out}/00.png`], { env });
  assert.equal(r.code, 0, show(r));
  assert.deepEqual(await listTree(out), [live, '00.png'].sort());
});

test('a stale temp video from a killed run is removed by the next video run in that folder', async () => {
  const out = dir.path('stale-video');
  await mkdir(out);
  const short = await makeClip(dir.dir, 'short.mp4', { size: '64x48', seconds: 1 });
  const stale = `.styled.pastiche-tmp-${deadPid()}-89abcdef.mp4`;
  await writeFile(`${out}/${stale}`, 'a partial video');
  const r = await runCli(['stylize', short, '-m', zoo, '-o', `${out}/other.mp4`], { env });
  assert.equal(r.code, 0, show(r));
  assert.deepEqual(await listTree(out), ['other.mp4']);
  assert.ok(!existsSync(`${out}/${stale}`));
});
