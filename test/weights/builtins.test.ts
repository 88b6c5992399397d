/**
 * Built-in styles: the networks shipped in models/ load, stylise, carry their credits and training
 * record, and show in `models list`; the README's first command works on a fresh store; the
 * store's rules around them (a stored model hides a built-in, built-ins cannot be removed) hold,
 * checked on a stand-in built-ins folder. None of this needs the shared data.
 */
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { copyFile, mkdir, readFile, writeFile } from 'node:fs/promises';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { builtinDir, builtinNames, builtinRecord } from '../../src/weights/builtins.js';
import { exportModel, listModels, removeModel, resolveModel, saveModel } from '../../src/weights/store.js';
import { openStyleModel } from '../../src/style/model.js';
import { stylizeImage } from '../../src/style/transfer.js';
import { SAMPLE_PHOTO } from '../../src/style/styles-sheet.js';
import { imageSize, readImage } from '../../src/image/codec.js';
import { clearModelCache } from '../../src/runtime/index.js';
import { isRealtimeArchitecture } from '../../src/style/realtime.js';
import { runCli } from '../helpers/cli.js';
import { projectRoot } from '../helpers/data.js';
import { scratch } from '../helpers/files.js';
import { psnr } from '../helpers/compare.js';
import { tinyTransformerModel } from '../helpers/models.js';

after(() => clearModelCache());

/** Runs `body` with PASTICHE_HOME (an empty store) and PASTICHE_BUILTINS set, restoring both after. */
async function withEnv<T>(vars: Record<string, string | undefined>, body: () => Promise<T>): Promise<T> {
  const previous = Object.fromEntries(Object.keys(vars).map((k) => [k, process.env[k]]));
  for (const [k, v] of Object.entries(vars)) if (v === undefined) delete process.env[k]; else process.env[k] = v;
  try {
    return await body();
  } finally {
    for (const [k, v] of Object.entries(previous)) if (v === undefined) delete process.env[k]; else process.env[k] = v;
  }
}

const shipped = join(projectRoot, 'models');

test('the package ships built-in styles in models/, each with credits and a training record', async () => {
  const names = await withEnv({ PASTICHE_BUILTINS: undefined }, () => builtinNames());
  assert.equal(await withEnv({ PASTICHE_BUILTINS: undefined }, async () => builtinDir()), join(shipped, '/'));
  assert.ok(names.length >= 1, `expected built-in models in ${shipped}, found none`);
  for (const name of names) {
    const record = await withEnv({ PASTICHE_BUILTINS: undefined }, () => builtinRecord(name));
    assert.ok(record, `${name}: models/${name}.json is missing or unreadable`);
    for (const key of ['title', 'artist', 'year', 'collection', 'licence'] as const) {
      assert.ok(typeof record.credits[key] === 'string' && record.credits[key].length > 0, `${name}: credits.${key} missing`);
    }
    const training = record.training as Record<string, unknown> | undefined;
    assert.ok(training, `${name}: no training record`);
    assert.match(String(training.command), /^pastiche train /, `${name}: training.command`);
    for (const key of ['stepsDone', 'imagesSeen', 'seconds']) assert.ok(Number(training[key]) > 0, `${name}: training.${key}`);
    assert.ok(training.finalLoss && typeof training.finalLoss === 'object', `${name}: training.finalLoss`);
  }
});

test('every built-in loads through the model door and stylises the sample photo', async () => {
  await withEnv({ PASTICHE_BUILTINS: undefined }, async () => {
    const { image: sample } = await readImage(SAMPLE_PHOTO, { size: 96 });
    for (const name of await builtinNames()) {
      const style = await openStyleModel(name, { threads: 1 });
      const out = await stylizeImage(style, sample);
      assert.deepEqual([out.width, out.height], [sample.width, sample.height], name);
      assert.ok(out.data.every(Number.isFinite), `${name}: non-finite output`);
      // A style network repaints: far from the photo, unlike an identity or an empty network.
      const db = psnr(out.data, sample.data);
      assert.ok(db < 22, `${name}: output too close to the photo (${db.toFixed(1)} dB), not a style`);
    }
  });
});

test('each built-in real-time network (NAME-rt) has a quality sibling and says it is stabilised', async () => {
  const s = await scratch('pastiche-rt-');
  await withEnv({ PASTICHE_BUILTINS: undefined, PASTICHE_HOME: s.path('home') }, async () => {
    const models = await listModels();
    const names = new Set(models.map((m) => m.name));
    for (const m of models.filter((x) => x.name.endsWith('-rt'))) {
      assert.ok(m.builtin);
      assert.ok(isRealtimeArchitecture(m.architecture), `${m.name}: ${m.architecture} is not a real-time architecture`);
      assert.ok(names.has(m.name.slice(0, -3)), `${m.name}: no quality network ${m.name.slice(0, -3)}`);
      assert.match(m.description, /stabilised against flicker/, `${m.name}: description should say it is stable`);
    }
  }).finally(() => s.cleanup());
});

test('a stored model hides a built-in of its name; built-ins are listed, exported, never removed', async () => {
  const s = await scratch('pastiche-builtins-');
  try {
    const builtins = s.path('builtins');
    await mkdir(builtins, { recursive: true });
    // A stand-in built-in: a tiny network saved with the store's metadata, moved into the folder.
    await withEnv({ PASTICHE_HOME: s.path('maker'), PASTICHE_BUILTINS: '' }, async () => {
      const made = await saveModel('tiny', tinyTransformerModel('realtime', { seed: 5 }), { architecture: 'realtime', source: 'test', description: 'a built-in stand-in' });
      await copyFile(made.path, join(builtins, 'tiny.onnx'));
    });
    await writeFile(join(builtins, 'tiny.json'), JSON.stringify({ credits: { title: 't', artist: 'a', year: '1900', collection: 'c', licence: 'CC0' } }));
    await withEnv({ PASTICHE_HOME: s.path('home'), PASTICHE_BUILTINS: builtins }, async () => {
      let list = await listModels();
      assert.deepEqual(list.map((m) => [m.name, m.builtin, m.description]), [['tiny', true, 'a, t (1900); a built-in stand-in']]);
      const resolved = await resolveModel('tiny');
      assert.equal(resolved.metadata['pastiche.architecture'], 'realtime');
      await exportModel('tiny', s.path('exported.onnx'));
      assert.deepEqual(await readFile(s.path('exported.onnx')), await readFile(join(builtins, 'tiny.onnx')));
      // --fp16 export: smaller, and the same network through the door.
      await exportModel('tiny', s.path('half.onnx'), { half: true });
      const [full, half] = [await readFile(join(builtins, 'tiny.onnx')), await readFile(s.path('half.onnx'))];
      assert.ok(half.byteLength < full.byteLength * 0.75, `${half.byteLength} vs ${full.byteLength} bytes`);
      const { image } = await readImage(SAMPLE_PHOTO, { size: 64 });
      const [a, b] = [await openStyleModel(join(builtins, 'tiny.onnx')), await openStyleModel(s.path('half.onnx'))];
      assert.ok(psnr((await stylizeImage(a, image)).data, (await stylizeImage(b, image)).data) > 45);
      await assert.rejects(removeModel('tiny'), /^Error: 'tiny' is a built-in style, shipped with pastiche: it cannot be removed/);
      assert.ok(existsSync(join(builtins, 'tiny.onnx')));

      // The user's own 'tiny' comes first, in the list and for --model.
      await saveModel('tiny', tinyTransformerModel('compact', { seed: 6 }), { architecture: 'compact', source: 'test', description: 'mine' });
      list = await listModels();
      assert.deepEqual(list.map((m) => [m.name, m.builtin, m.architecture]), [['tiny', false, 'compact']]);
      assert.equal((await resolveModel('tiny')).metadata['pastiche.architecture'], 'compact');
      await removeModel('tiny');
      assert.equal((await resolveModel('tiny')).metadata['pastiche.architecture'], 'realtime');
    });
    await withEnv({ PASTICHE_HOME: s.path('home'), PASTICHE_BUILTINS: '' }, async () => {
      assert.deepEqual(await listModels(), []);
      await assert.rejects(resolveModel('tiny'), /No model named 'tiny' in the store .* nor built in; it is empty/);
    });
  } finally {
    await s.cleanup();
  }
});

test("the README's first command stylises the sample photo with a built-in on an empty store; models list and styles show the built-ins", async () => {
  const s = await scratch('pastiche-first-');
  try {
    const env = { PASTICHE_HOME: s.path('home'), PASTICHE_BUILTINS: undefined };
    const readme = await readFile(join(projectRoot, 'README.md'), 'utf8');
    // The first `npx pastiche` line in the README is the one a newcomer runs.
    const first = /npx pastiche (stylize \S+ --model (\S+) -o \S+)/.exec(readme);
    assert.ok(first, 'README has no `npx pastiche stylize <photo> --model <style> -o <out>` command');
    const model = first[2];
    const names = await withEnv({ PASTICHE_BUILTINS: undefined }, () => builtinNames());
    assert.ok(names.includes(model), `README's first command uses '${model}', which is not a built-in (${names.join(', ')})`);
    const args = first[1].split(' ').map((a, i, all) => (all[i - 1] === '-o' ? s.path('out.jpg') : a));
    const run = await runCli(args, { env, timeoutMs: 120_000 });
    assert.equal(run.code, 0, run.stderr);
    assert.deepEqual(await imageSize(s.path('out.jpg')), await imageSize(join(projectRoot, args[1])));

    const list = await runCli(['models', 'list'], { env });
    assert.equal(list.code, 0, list.stderr);
    for (const name of names) assert.match(list.stdout, new RegExp(`^${name.replace(/[.-]/g, '\\$&')}\\s.*\\sbuilt-in\\s`, 'm'));

    const sheet = await runCli(['styles', '-o', s.path('styles.png'), '--size', '48', '--columns', '3', '--threads', '1', '--json'], { env, timeoutMs: 120_000 });
    assert.equal(sheet.code, 0, sheet.stderr);
    const legend = JSON.parse(sheet.stdout) as { cells: string[]; columns: number };
    assert.deepEqual(legend.cells.slice(1).sort(), [...names].sort());
    const rows = Math.ceil(legend.cells.length / 3);
    assert.deepEqual(await imageSize(s.path('styles.png')), { width: Math.min(3, legend.cells.length) * 48 + (Math.min(3, legend.cells.length) - 1) * 4, height: rows * 48 + (rows - 1) * 4 });

    // models list --preview: the same sheet at its default size, then the list.
    const preview = await runCli(['models', 'list', '--preview', s.path('preview.png'), '--threads', '1'], { env, timeoutMs: 120_000 });
    assert.equal(preview.code, 0, preview.stderr);
    assert.match(preview.stderr, /^row 1, column 1: \(the sample photo\)$/m);
    assert.match(preview.stdout, new RegExp(`^${names[0]}\\s.*\\sbuilt-in\\s`, 'm'));
    assert.equal((await imageSize(s.path('preview.png'))).width, 4 * 384 + 3 * 4);

    const unknown = await runCli(['stylize', args[1], '--model', 'no-such-style', '-o', s.path('x.jpg')], { env });
    assert.equal(unknown.code, 1);
    assert.match(unknown.stderr, new RegExp(`No model named 'no-such-style' .*available: .*${names[0]}`));
    assert.ok(!existsSync(s.path('x.jpg')));
  } finally {
    await s.cleanup();
  }
});
