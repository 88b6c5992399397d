/**
 * `--realtime` (src/style/realtime.ts): a style's real-time network is the store model NAME-rt, or
 * NAME itself when its metadata marks the realtime architecture. On a temporary store of small
 * seeded networks; the CLI runs against the same store through PASTICHE_HOME.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { stat } from 'node:fs/promises';
import { openStyleModel } from '../../src/style/model.js';
import { realtimeModelName } from '../../src/style/realtime.js';
import { stylizeImage } from '../../src/style/transfer.js';
import { readImage, writeImage } from '../../src/image/codec.js';
import { clearModelCache } from '../../src/runtime/index.js';
import { saveModel } from '../../src/weights/store.js';
import { runCli } from '../helpers/cli.js';
import { scratch } from '../helpers/files.js';
import { tinyTransformerModel } from '../helpers/models.js';
import { psnr, smoothImage } from '../image/fixtures.js';

let dir: Awaited<ReturnType<typeof scratch>>;
let env: Record<string, string>;

before(async () => {
  dir = await scratch('pastiche-realtime-');
  // The store alone: the built-in styles have real-time networks of these very names (scream-rt).
  env = { PASTICHE_HOME: dir.path('home'), PASTICHE_BUILTINS: '' };
  process.env.PASTICHE_HOME = env.PASTICHE_HOME;
  process.env.PASTICHE_BUILTINS = '';
  const save = (name: string, bytes: Uint8Array, architecture: string): Promise<unknown> =>
    saveModel(name, bytes, { architecture, source: 'test', description: `${architecture} test network` });
  await save('wave', tinyTransformerModel('lengstrom', { seed: 3 }), 'lengstrom');
  await save('wave-rt', tinyTransformerModel('realtime', { seed: 4 }), 'realtime');
  await save('scream', tinyTransformerModel('lengstrom', { seed: 5 }), 'lengstrom');
  // A real-time network trained under its own name, with custom widths in its architecture name.
  await save('solo', tinyTransformerModel('realtime', { seed: 6 }), 'realtime[8,8,16]x2');
  // A distilled student need not be of the realtime architecture: the -rt name is what counts.
  await save('udnie', tinyTransformerModel('lengstrom', { seed: 7 }), 'lengstrom');
  await save('udnie-rt', tinyTransformerModel('pytorch-examples', { seed: 8 }), 'compact');
});

after(async () => {
  delete process.env.PASTICHE_BUILTINS;
  clearModelCache();
  await dir?.cleanup();
});

test('realtimeModelName: NAME-rt when the store has it; a real-time network named directly is kept', async () => {
  assert.equal(await realtimeModelName('wave'), 'wave-rt');
  assert.equal(await realtimeModelName('wave-rt'), 'wave-rt');
  assert.equal(await realtimeModelName('solo'), 'solo');
  assert.equal(await realtimeModelName('udnie'), 'udnie-rt');
});

test('realtimeModelName: a style without a real-time network, or a path, gets an error naming what is missing', async () => {
  await assert.rejects(realtimeModelName('scream'), (error: Error) => {
    assert.match(error.message, /No real-time network for style 'scream' \(a lengstrom network\): the store \(.*\) has no model 'scream-rt'/);
    assert.match(error.message, /real-time networks in the store: solo, udnie-rt, wave-rt/);
    assert.match(error.message, /pastiche train --arch realtime --name scream-rt/);
    return true;
  });
  await assert.rejects(realtimeModelName('nothing'), /No real-time network for 'nothing': .* has no model 'nothing-rt' nor 'nothing'/);
  await assert.rejects(realtimeModelName('./wave.onnx'), RangeError);
});

test('CLI: stylize --realtime runs NAME-rt and names the output after it; a missing one writes nothing', async () => {
  const input = dir.path('in.png');
  const content = smoothImage(96, 64);
  await writeImage(input, content);
  const run = await runCli(['stylize', input, '--model', 'wave', '--realtime', '--threads', '1', '-o', dir.path('out') + '/', '--json'], { env });
  assert.equal(run.code, 0, run.stderr);
  const written = JSON.parse(run.stdout) as { output: string };
  assert.equal(written.output, dir.path('out', 'in-wave-rt.png'));
  const got = (await readImage(written.output)).image;
  const source = (await readImage(input)).image;
  const realtime = await stylizeImage(await openStyleModel('wave-rt', { threads: 1 }), source);
  const quality = await stylizeImage(await openStyleModel('wave', { threads: 1 }), source);
  assert.ok(psnr(got, realtime) >= 45, `output vs wave-rt ${psnr(got, realtime).toFixed(1)} dB`);
  assert.ok(psnr(got, quality) < 30, 'the output should not be the quality network\'s');

  const missing = await runCli(['stylize', input, '--model', 'scream', '--realtime', '-o', dir.path('scream.png')], { env });
  assert.notEqual(missing.code, 0);
  assert.match(missing.stderr, /No real-time network for style 'scream'.*'scream-rt'/);
  assert.equal(await stat(dir.path('scream.png')).catch(() => null), null);
});
