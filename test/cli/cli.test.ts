/**
 * The `pastiche` command line, run as users run it (node bin/pastiche.js): help, the model store
 * commands, stylising an image, a folder and a video with every flag, and for each kind of bad
 * input an exit code, one clear line on stderr naming the file and the problem, and nothing
 * written. Each spawn costs ~1.5 s (tsx + onnxruntime start-up), so cases are chosen, not exhaustive.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { copyFile, link, mkdir, readFile, readdir, rm, truncate, writeFile } from 'node:fs/promises';
import { existsSync } from 'node:fs';
import { basename, join } from 'node:path';
import { availableParallelism } from 'node:os';
import type { Command } from 'commander';
import { program } from '../../src/cli/main.js';
import { defaultThreads } from '../../src/runtime/index.js';
import { imageSize, writeImage } from '../../src/image/codec.js';
import { countFrames, probeVideo } from '../../src/video/ffmpeg.js';
import { dataPath } from '../helpers/data.js';
import { runCli, type CliResult } from '../helpers/cli.js';
import { copyCheckpoint, editManifest, listTree, scratch, snapshotTree, tempLeftovers, writeSolidPng } from '../helpers/files.js';
import { zooLikeModel } from '../helpers/models.js';
import { noiseImage, smoothImage } from '../image/fixtures.js';
import { audioSeconds, makeClip } from '../video/clips.js';

const laMuse = dataPath('models/fast-style/la_muse');
const photo = dataPath('images/content/tubingen.jpg');

let dir: Awaited<ReturnType<typeof scratch>>;
let env: Record<string, string>;
/** A tiny pointwise ONNX model (no shared data needed) for the cases that fail before inference matters. */
let zoo: string;
/** A 1 s 64x48 25 fps clip with an AAC track. */
let clip: string;

before(async () => {
  dir = await scratch('pastiche-cli-');
  env = { PASTICHE_HOME: dir.path('home') };
  zoo = dir.path('zoo.onnx');
  await writeFile(zoo, zooLikeModel());
  clip = await makeClip(dir.dir, 'clip.mp4', { size: '64x48', rate: '25', seconds: 1, audio: 'aac' });
});

after(async () => {
  await dir.cleanup();
});

/** A fresh, empty folder for one case's output. */
async function outDir(name: string): Promise<string> {
  const path = dir.path('out', name);
  await mkdir(path, { recursive: true });
  return path;
}

const show = (r: CliResult): string => `exit ${r.code}${r.signal ? ` (${r.signal})` : ''}\nstdout: ${r.stdout}\nstderr: ${r.stderr}`;

// ---- Help --------------------------------------------------------------------------------------

const STYLIZE_FLAGS = ['--model', '-m', '--output', '-o', '--size', '--strength', '--preserve-colors', '--margin', '--tile',
  '--tile-overlap', '--format', '--crf', '--json', '--threads', '--execution-provider', '--help'];

test('--help for the program, stylize and models exits 0 and names every command and flag', async () => {
  const top = await runCli(['--help'], { env });
  assert.equal(top.code, 0, show(top));
  for (const word of ['stylize', 'models', '--version', '--help']) assert.ok(top.stdout.includes(word), `--help lacks ${word}`);

  const stylize = await runCli(['stylize', '--help'], { env });
  assert.equal(stylize.code, 0, show(stylize));
  for (const flag of STYLIZE_FLAGS) assert.ok(new RegExp(`(^|[\\s,])${flag}\\b`).test(stylize.stdout), `stylize --help lacks ${flag}`);

  const models = await runCli(['models', '--help'], { env });
  assert.equal(models.code, 0, show(models));
  for (const word of ['import', 'list', 'remove', 'export']) assert.ok(models.stdout.includes(word), `models --help lacks ${word}`);
  assert.ok(models.stdout.includes(dir.path('home')), 'models --help names the store folder from PASTICHE_HOME');
});

test('stylize, optimize and train use every available core unless --threads says otherwise, and say so (in-process)', () => {
  // onnxruntime's own default picked one thread on a 2-core VM; the default is now explicit.
  assert.equal(defaultThreads(), availableParallelism());
  for (const name of ['stylize', 'optimize', 'train']) {
    const help = (program().commands.find((c) => c.name() === name) as Command).helpInformation().replace(/\s+/g, ' ');
    assert.match(help, new RegExp(`--threads <n> CPU threads per operation \\(default: every available core, ${availableParallelism()} here\\)`), `${name} --help`);
  }
});

test('the help of each models subcommand names its flags (in-process, no spawn)', () => {
  const models = program().commands.find((c) => c.name() === 'models') as Command;
  const help = (name: string): string => (models.commands.find((c) => c.name() === name) as Command).helpInformation();
  for (const flag of ['--name', '--description', '--force', '--json']) assert.ok(help('import').includes(flag), `models import --help lacks ${flag}`);
  assert.ok(help('list').includes('--json'));
  assert.match(help('export'), /<name> <file>/);
  assert.match(help('remove'), /<name>/);
});

// ---- Model store -------------------------------------------------------------------------------

test('models import, list (text and --json), export and remove', { skip: laMuse.skip }, async () => {
  const imported = await runCli(['models', 'import', laMuse.path, '--name', 'muse', '--description', 'La Muse (first)', '--json'], { env });
  assert.equal(imported.code, 0, show(imported));
  const model = JSON.parse(imported.stdout) as { name: string; architecture: string; path: string; description: string };
  assert.deepEqual([model.name, model.architecture, model.description], ['muse', 'lengstrom', 'La Muse (first)']);
  assert.equal(model.path, join(dir.path('home'), 'models', 'muse.onnx'));
  assert.ok(existsSync(model.path));

  const replaced = await runCli(['models', 'import', laMuse.path, '--name', 'muse', '--description', 'La Muse', '--force'], { env });
  assert.equal(replaced.code, 0, show(replaced));
  assert.match(replaced.stderr, /imported muse \(lengstrom, 6\.4 MiB\)/);

  const list = await runCli(['models', 'list'], { env });
  assert.equal(list.code, 0, show(list));
  assert.match(list.stdout, /^muse\s+lengstrom\s+6\.4 MiB\s+stored\s+La Muse$/m);

  const json = await runCli(['models', 'list', '--json'], { env });
  assert.equal(json.code, 0, show(json));
  // The built-in styles follow the store's models.
  const entries = JSON.parse(json.stdout) as { name: string; architecture: string; description: string; builtin: boolean }[];
  assert.deepEqual(entries.filter((e) => !e.builtin).map((e) => [e.name, e.architecture, e.description]), [['muse', 'lengstrom', 'La Muse']]);

  const exported = dir.path('exported', 'muse.onnx');
  const exportRun = await runCli(['models', 'export', 'muse', exported], { env });
  assert.equal(exportRun.code, 0, show(exportRun));
  assert.deepEqual(await readFile(exported), await readFile(model.path));
});

test('stylize an image with every image flag and --json', { skip: laMuse.skip || photo.skip }, async () => {
  const out = await outDir('image');
  const output = join(out, 'tubingen.png');
  const r = await runCli(['stylize', photo.path, '--model', 'muse', '-o', output, '--size', '96', '--strength', '0.8',
    '--preserve-colors', 'luminance', '--margin', '16', '--tile', '64', '--tile-overlap', '16', '--threads', '1',
    '--execution-provider', 'cpu', '--json'], { env });
  assert.equal(r.code, 0, show(r));
  const result = JSON.parse(r.stdout) as { input: string; output: string; width: number; height: number; seconds: number };
  assert.deepEqual([result.input, result.output, result.width, result.height], [photo.path, output, 96, 72]);
  assert.ok(result.seconds > 0);
  assert.deepEqual(await imageSize(output), { width: 96, height: 72 });
  assert.deepEqual(await listTree(out), ['tubingen.png']);
});

test('stylize a folder with --format png: mirrors the tree, reports the bad file, exits 1', async () => {
  const input = dir.path('folder-in');
  await mkdir(join(input, 'nested'), { recursive: true });
  await writeImage(join(input, 'one.jpg'), smoothImage(48, 36));
  await writeImage(join(input, 'nested', 'two.webp'), smoothImage(36, 48));
  await writeFile(join(input, 'broken.jpg'), 'not a jpeg\n');
  const out = dir.path('out', 'folder');
  const r = await runCli(['stylize', input, '-m', zoo, '-o', out, '--format', 'png', '--size', '32', '--json'], { env });
  assert.equal(r.code, 1, show(r)); // some files were skipped
  const result = JSON.parse(r.stdout) as { written: { output: string }[]; failed: { input: string; error: string }[] };
  assert.equal(result.written.length, 2);
  assert.deepEqual(result.failed.map((f) => f.input), [join(input, 'broken.jpg')]);
  assert.match(result.failed[0].error, /broken\.jpg: not a supported image/);
  assert.deepEqual(await listTree(out), ['nested/two.png', 'one.png']);
  assert.deepEqual(await imageSize(join(out, 'one.png')), { width: 32, height: 24 });
  assert.deepEqual(await imageSize(join(out, 'nested', 'two.png')), { width: 24, height: 32 });
});

test('stylize a video with --crf: same frames and fps, audio kept', async () => {
  const out = await outDir('video');
  const output = join(out, 'styled.mp4');
  const r = await runCli(['stylize', clip, '-m', zoo, '-o', output, '--crf', '30', '--margin', '0', '--json'], { env });
  assert.equal(r.code, 0, show(r));
  const result = JSON.parse(r.stdout) as { frames: number; fps: string; width: number; height: number };
  assert.deepEqual([result.frames, result.fps, result.width, result.height], [25, '25/1', 64, 48]);
  assert.equal(await countFrames(output), 25);
  assert.equal((await probeVideo(output)).fps, '25/1');
  assert.ok(Math.abs((await audioSeconds(output)) - (await audioSeconds(clip))) < 0.05);
  assert.deepEqual(await listTree(out), ['styled.mp4']);
});

test('models remove deletes the model from the store', { skip: laMuse.skip }, async () => {
  const r = await runCli(['models', 'remove', 'muse'], { env });
  assert.equal(r.code, 0, show(r));
  assert.deepEqual(await readdir(join(dir.path('home'), 'models')), []);
});

// ---- Bad input ---------------------------------------------------------------------------------

interface BadCase {
  readonly name: string;
  /** Arguments; OUT is replaced by the case's (empty) output folder. */
  readonly args: (out: string) => string[] | Promise<string[]>;
  /** What stderr's one line must name, and the problem it must describe. */
  readonly names: (out: string) => string;
  readonly problem: RegExp;
  readonly code?: number;
  readonly env?: Record<string, string>;
  readonly skip?: string | false;
  /** Files that were in the output folder before the run (default none). */
  readonly keep?: string[];
}

async function badImage(name: string, make: (path: string) => Promise<void>): Promise<string> {
  const path = dir.path('bad', name);
  await mkdir(dir.path('bad'), { recursive: true });
  await make(path);
  return path;
}

async function brokenCheckpoint(name: string, damage: (copy: string) => Promise<void>): Promise<string> {
  const copy = await copyCheckpoint(laMuse.path, dir.path('bad', name));
  await damage(copy);
  return copy;
}

const bad = (name: string): string => dir.path('bad', name);

const BAD_CASES: BadCase[] = [
  {
    name: 'truncated JPEG',
    args: async (out) => [await badImage('cut.jpg', async (p) => {
      await writeImage(p, noiseImage(200, 150));
      await truncate(p, 4000);
    }), '-m', zoo, '-o', join(out, 'x.jpg')],
    names: () => bad('cut.jpg'),
    problem: /cannot decode: .*(corrupt|truncated)/,
  },
  {
    name: 'truncated PNG',
    args: async (out) => [await badImage('cut.png', async (p) => {
      await writeImage(p, noiseImage(100, 100));
      await truncate(p, 10_000);
    }), '-m', zoo, '-o', join(out, 'x.png')],
    names: () => bad('cut.png'),
    problem: /cannot decode: .*(corrupt|truncated)/,
  },
  {
    name: 'a text file named .jpg',
    args: async (out) => [await badImage('text.jpg', (p) => writeFile(p, 'hello, I am text\n')), '-m', zoo, '-o', join(out, 'x.jpg')],
    names: () => bad('text.jpg'),
    problem: /not a supported image/,
  },
  {
    name: 'an empty file',
    args: async (out) => [await badImage('empty.jpg', (p) => writeFile(p, '')), '-m', zoo, '-o', join(out, 'x.jpg')],
    names: () => bad('empty.jpg'),
    problem: /file is empty/,
  },
  {
    name: "an image over sharp's pixel limit (17000x16000)",
    args: async (out) => [await badImage('huge.png', (p) => writeSolidPng(p, 17000, 16000)), '-m', zoo, '-o', join(out, 'x.png')],
    names: () => bad('huge.png'),
    problem: /image is 17000x16000 = 272000000 pixels, over the limit of 268402689 pixels/,
  },
  {
    name: 'a checkpoint folder with a missing variable file as --model',
    skip: laMuse.skip,
    args: async (out) => [clip, '-m', await brokenCheckpoint('no-var', (c) => rm(join(c, 'Variable_9'))), '-o', join(out, 'x.mp4')],
    names: () => join(bad('no-var'), 'Variable_9'),
    problem: /cannot read variable 'Variable_9'/,
  },
  {
    name: 'a checkpoint folder with a wrongly shaped variable as --model',
    skip: laMuse.skip,
    args: async (out) => [clip, '-m', await brokenCheckpoint('bad-shape', (c) => editManifest(c, (m) => { m.Variable_6.shape = [3, 3, 128, 64]; })), '-o', join(out, 'x.mp4')],
    names: () => join(bad('bad-shape'), 'Variable_6'),
    problem: /variable 'Variable_6' has shape \[3, 3, 128, 64\], which does not fit conv3\.conv2d\.weight/,
  },
  {
    name: 'a text file as --model x.onnx',
    args: async (out) => [clip, '-m', await badImage('x.onnx', (p) => writeFile(p, 'not a model\n')), '-o', join(out, 'x.mp4')],
    names: () => bad('x.onnx'),
    problem: /not an ONNX model/,
  },
  {
    name: 'a truncated video',
    args: async (out) => [await badImage('cut.mp4', async (p) => {
      await copyFile(clip, p);
      await truncate(p, 6000);
    }), '-m', zoo, '-o', join(out, 'x.mp4')],
    names: () => bad('cut.mp4'),
    problem: /not a readable video/,
  },
  {
    name: 'an output path under a regular file',
    keep: ['file.txt'],
    args: async (out) => {
      await writeFile(join(out, 'file.txt'), 'a file, not a folder\n');
      return [await badImage('ok.png', (p) => writeImage(p, smoothImage(20, 16))), '-m', zoo, '-o', join(out, 'file.txt', 'x.png')];
    },
    names: (out) => join(out, 'file.txt', 'x.png'),
    problem: /cannot write here/,
  },
  {
    name: 'ffmpeg not runnable (FFMPEG_PATH=/nonexistent) for a video',
    env: { FFMPEG_PATH: '/nonexistent' },
    args: (out) => [clip, '-m', zoo, '-o', join(out, 'x.mp4')],
    names: () => '/nonexistent',
    problem: /ffmpeg not runnable at \/nonexistent: no such file \(ENOENT\)\. Install ffmpeg or set FFMPEG_PATH/,
  },
  {
    name: 'an unknown model name',
    args: (out) => [clip, '-m', 'nosuch', '-o', join(out, 'x.mp4')],
    names: () => "'nosuch'",
    problem: /^pastiche: No model named 'nosuch' in the store/,
  },
  {
    name: '--strength 1.5 (a bad option value: usage error, exit 2)',
    code: 2,
    args: (out) => [clip, '-m', zoo, '--strength', '1.5', '-o', join(out, 'x.mp4')],
    names: () => '--strength',
    problem: /^pastiche: Expected a number between 0 and 1 for --strength but received 1\.5$/,
  },
  {
    name: 'an unknown flag (usage error, exit 2)',
    code: 2,
    args: (out) => [clip, '-m', zoo, '--bogus', '-o', join(out, 'x.mp4')],
    names: () => '--bogus',
    problem: /unknown option '--bogus'/,
  },
];

test('bad input: exit code, one line on stderr naming the file and the problem, nothing written', { concurrency: 2 }, async (t) => {
  await Promise.all(BAD_CASES.map((c, i) => t.test(c.name, { skip: c.skip }, async () => {
    const out = await outDir(`bad-${i}`);
    const args = await c.args(out);
    const r = await runCli(['stylize', ...args], { env: { ...env, ...c.env } });
    assert.equal(r.code, c.code ?? 1, show(r));
    // Commander's usage errors add the --help hint on a line of its own.
    const lines = r.errorLines.filter((l) => l !== '(run with --help for usage)');
    assert.equal(lines.length, 1, `expected one line on stderr:\n${r.stderr}`);
    const [line] = lines;
    assert.ok(line.includes(c.names(out)), `stderr should name ${c.names(out)}: ${line}`);
    assert.match(line, c.problem);
    assert.equal(r.stdout, '');
    const left = await listTree(out);
    assert.deepEqual(tempLeftovers(left), []);
    assert.deepEqual(left, c.keep ?? [], 'nothing written to the output folder');
  })));
});

// ---- Never over an input -----------------------------------------------------------------------

test('an output that is an input is refused: exit 1, one line naming it, the input byte-for-byte unchanged', async () => {
  const cases: { name: string; args: (out: string) => Promise<string[]>; names: (out: string) => string }[] = [
    {
      name: 'image as dir/../dir/./photo.jpg',
      args: async (out) => {
        await writeImage(join(out, 'photo.jpg'), smoothImage(40, 30));
        return [join(out, 'photo.jpg'), '-m', zoo, '-o', `${out}/../${basename(out)}/./photo.jpg`];
      },
      names: (out) => `${out}/../${basename(out)}/./photo.jpg: is the input ${join(out, 'photo.jpg')}`,
    },
    {
      name: 'folder -o the same folder',
      args: async (out) => {
        await writeImage(join(out, 'a.jpg'), smoothImage(20, 16));
        await writeImage(join(out, 'b.png'), smoothImage(20, 16));
        return [out, '-m', zoo, '-o', out];
      },
      names: (out) => `${join(out, 'a.jpg')}: is the input ${join(out, 'a.jpg')}`,
    },
    {
      name: 'video -o a hard link to it',
      args: async (out) => {
        await copyFile(clip, join(out, 'clip.mp4'));
        await link(join(out, 'clip.mp4'), join(out, 'link.mp4'));
        return [join(out, 'clip.mp4'), '-m', zoo, '-o', join(out, 'link.mp4')];
      },
      names: (out) => `${join(out, 'link.mp4')}: is the input ${join(out, 'clip.mp4')}`,
    },
  ];
  await Promise.all(cases.map(async (c, i) => {
    const out = await outDir(`same-${i}`);
    const args = await c.args(out);
    const before = await snapshotTree(out);
    const r = await runCli(['stylize', ...args], { env });
    assert.equal(r.code, 1, `${c.name}: ${show(r)}`);
    assert.deepEqual(r.errorLines, [`pastiche: ${c.names(out)}: pastiche never overwrites its input; choose another --output`], c.name);
    assert.equal(r.stdout, '');
    assert.deepEqual(await snapshotTree(out), before, `${c.name}: the input is unchanged and nothing was written`);
  }));
});

// ---- Ctrl-C ------------------------------------------------------------------------------------

/** Processes whose command line mentions `text` (Linux /proc only; [] elsewhere). */
async function processesMentioning(text: string): Promise<number[]> {
  if (!existsSync('/proc/self/cmdline')) return [];
  const pids: number[] = [];
  for (const entry of await readdir('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    const cmdline = await readFile(`/proc/${entry}/cmdline`, 'utf8').catch(() => '');
    if (cmdline.includes(text)) pids.push(Number(entry));
  }
  return pids;
}

test('Ctrl-C during a video exits 130, stops ffmpeg and leaves no output or temp file', { skip: laMuse.skip }, async () => {
  const long = await makeClip(dir.dir, 'long.mp4', { size: '320x240', rate: '25', seconds: 10 });
  const out = await outDir('interrupted');
  const output = join(out, 'long-styled.mp4');
  const started = Date.now();
  let sawTemp = false;
  const r = await runCli(['stylize', long, '-m', laMuse.path, '-o', output], {
    env,
    timeoutMs: 60_000,
    onSpawn: (child) => {
      // Interrupt once the encoder is writing its temp file (so frames are flowing), and not
      // before ~2 s; kill it outright if it never gets there.
      const poll = setInterval(() => {
        void readdir(out).then((files) => {
          if (files.some((f) => f.includes('pastiche-tmp'))) sawTemp = true;
          if ((sawTemp && Date.now() - started >= 2000) || Date.now() - started > 30_000) {
            clearInterval(poll);
            child.kill('SIGINT');
          }
        });
      }, 50);
      child.on('exit', () => clearInterval(poll));
    },
  });
  assert.ok(sawTemp, `the run never started writing (${show(r)})`);
  assert.equal(r.code, 130, show(r));
  assert.match(r.stderr, /Interrupted: stopping and cleaning up/);
  assert.match(r.stderr, /pastiche: interrupted; nothing was written/);
  assert.deepEqual(await listTree(out), []);
  assert.deepEqual(await processesMentioning(out), [], 'no ffmpeg left writing into the output folder');
});
