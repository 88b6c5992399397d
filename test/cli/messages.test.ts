/**
 * Messages and exit codes (issue 13, item 12): an audio file, a store without rights, bad option
 * values (exit 2 like other usage errors), the --help hint on subcommands, a negative --style
 * weight and a --style-mask of another shape. Every case fails before any network runs.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync, spawnSync } from 'node:child_process';
import { chmod, mkdir, writeFile } from 'node:fs/promises';
import { runCli, type CliResult } from '../helpers/cli.js';
import { scratch } from '../helpers/files.js';
import { projectRoot } from '../helpers/data.js';
import { zooLikeModel } from '../helpers/models.js';
import { smoothImage } from '../image/fixtures.js';
import { writeImage } from '../../src/image/codec.js';

let dir: Awaited<ReturnType<typeof scratch>>;
let env: Record<string, string>;
let zoo: string;

before(async () => {
  dir = await scratch('pastiche-messages-');
  env = { PASTICHE_HOME: dir.path('home') };
  zoo = dir.path('zoo.onnx');
  await writeFile(zoo, zooLikeModel());
  await writeImage(dir.path('content.png'), smoothImage(64, 48));
  await writeImage(dir.path('style.png'), smoothImage(32, 32));
  await writeImage(dir.path('wide-mask.png'), smoothImage(64, 16));
});

after(async () => {
  await dir?.cleanup();
});

const show = (r: CliResult): string => `exit ${r.code}\nstdout: ${r.stdout}\nstderr: ${r.stderr}`;

test('an audio-only .m4a is called audio, not a damaged AVIF/HEIF', async () => {
  // An ISO media header with the 'M4A ' brand, as every .m4a starts.
  const head = Buffer.alloc(64);
  head.writeUInt32BE(28, 0);
  head.write('ftypM4A \0\0\0\0M4A mp42isom', 4, 'latin1');
  await writeFile(dir.path('song.m4a'), head);
  const r = await runCli(['stylize', dir.path('song.m4a'), '-m', zoo, '-o', dir.path('song.png')], { env });
  assert.equal(r.code, 1, show(r));
  assert.deepEqual(r.errorLines, [`pastiche: ${dir.path('song.m4a')}: is an audio file (MP4/M4A audio), not an image or video pastiche can read`]);
});

/** Makes `path` a folder whose entries cannot be removed, also by root; a reason to skip when it cannot. */
async function lockFolder(path: string): Promise<{ unlock: () => Promise<void> } | string> {
  if (process.getuid?.() !== 0) {
    await chmod(path, 0o555);
    return { unlock: () => chmod(path, 0o755) };
  }
  try {
    execFileSync('chattr', ['+i', path], { stdio: 'ignore' });
  } catch {
    return 'running as root and chattr +i is not available here, so no folder can be made unwritable';
  }
  return { unlock: async () => { execFileSync('chattr', ['-i', path], { stdio: 'ignore' }); } };
}

test('models remove without rights names the file, not a bare EACCES', async (t) => {
  const models = dir.path('home', 'models');
  await mkdir(models, { recursive: true });
  await writeFile(dir.path('home', 'models', 'kept.onnx'), 'x');
  const lock = await lockFolder(models);
  if (typeof lock === 'string') return t.skip(lock);
  try {
    const r = await runCli(['models', 'remove', 'kept'], { env });
    assert.equal(r.code, 1, show(r));
    assert.equal(r.errorLines.length, 1, show(r));
    assert.match(r.errorLines[0], new RegExp(`^pastiche: ${dir.path('home', 'models', 'kept.onnx')}: cannot remove model 'kept' \\(`));
  } finally {
    await lock.unlock();
  }
});

test('a bad option value is a usage error: exit 2, like an unknown flag', async () => {
  const r = await runCli(['stylize', dir.path('content.png'), '-m', zoo, '--margin', 'wide', '-o', dir.path('out.png')], { env });
  assert.equal(r.code, 2, show(r));
  assert.deepEqual(r.errorLines, ["pastiche: Expected an integer for --margin but received 'wide'"]);
});

test('subcommand usage errors end with the --help hint', async () => {
  for (const args of [['stylize'], ['stylize', 'x.png', '--bogus'], ['models', 'remove']]) {
    const r = await runCli(args, { env });
    assert.equal(r.code, 2, `${args.join(' ')}: ${show(r)}`);
    assert.ok(r.errorLines.includes('(run with --help for usage)'), `${args.join(' ')}: ${show(r)}`);
  }
});

test('optimize --style a.png:-1 refuses the negative weight, not a missing file', async () => {
  const r = await runCli(['optimize', dir.path('content.png'), '--style', `${dir.path('style.png')}:-1`, '-o', dir.path('opt.png')], { env });
  assert.equal(r.code, 2, show(r));
  assert.deepEqual(r.errorLines, [`pastiche: Expected a number of at least 0 for the --style weight of ${dir.path('style.png')} but received -1`]);
});

test('optimize refuses a --style-mask of another aspect ratio before anything else', async () => {
  // --vgg names a missing file: the mask must be refused before the weights are looked at.
  const r = await runCli(['optimize', dir.path('content.png'), '--style', dir.path('style.png'), '--style-mask', dir.path('wide-mask.png'),
    '--vgg', dir.path('no-vgg.h5'), '-o', dir.path('opt.png')], { env });
  assert.equal(r.code, 1, show(r));
  assert.deepEqual(r.errorLines, [`pastiche: The --style-mask ${dir.path('wide-mask.png')} is 64x16 but the content is 64x48: their aspect ratios differ`]);
});

/** Runs npm in the project root with only the project's own configuration (no user or global npmrc). */
function npm(args: readonly string[]): { stdout: string; stderr: string } {
  const home = dir.path('npm-home');
  const env: Record<string, string | undefined> = { ...process.env, HOME: home, npm_config_userconfig: `${home}/.npmrc`, npm_config_globalconfig: `${home}/npmrc` };
  for (const k of Object.keys(env)) if (/^npm_(config|package|lifecycle)_/i.test(k) && !/config_(user|global)config$/.test(k)) delete env[k];
  const child = spawnSync('npm', args, { cwd: projectRoot, env, encoding: 'utf8', timeout: 60_000 });
  return { stdout: child.stdout ?? '', stderr: child.stderr ?? '' };
}

test('npx pastiche prints nothing of npm\'s own, and no dependency install script can fetch binaries (item 14)', () => {
  const run = npm(['exec', '--offline', '--', 'pastiche', '--version']);
  assert.deepEqual(run.stderr.split('\n').filter((line) => /^npm (warn|error)/i.test(line)), [], run.stderr);
  assert.match(run.stdout, /^\d+\.\d+\.\d+/);
  // The behaviour the configuration exists for: onnxruntime-node's post-install (which downloads CUDA
  // provider binaries from outside the npm registry on linux x64) never runs, nor any other.
  assert.equal(npm(['config', 'get', 'ignore-scripts']).stdout.trim(), 'true');
});
