/**
 * The model door as users meet it (`models import`, `stylize --model`), run as a child process:
 * exit code, one line on stderr naming the file and the reason (no raw onnxruntime log), the
 * source unchanged, nothing in the store or the output folder. The library-level cases, one per
 * refusal, are in test/weights/model-door.test.ts; here each kind is spawned once.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdir, writeFile } from 'node:fs/promises';
import { writeImage } from '../../src/image/codec.js';
import { clearModelCache, loadModel } from '../../src/runtime/index.js';
import { runCli, type CliResult } from '../helpers/cli.js';
import { listTree, scratch, snapshotTree } from '../helpers/files.js';
import { zooLikeModel } from '../helpers/models.js';
import { halvingModel, nanOnBrightModel, secretModel } from '../helpers/hostile-models.js';
import { imageFrom, smoothImage } from '../image/fixtures.js';

const SECRET = 'hunter2: the password';

let dir: Awaited<ReturnType<typeof scratch>>;
let env: Record<string, string>;

before(async () => {
  dir = await scratch('pastiche-cli-door-');
  env = { PASTICHE_HOME: dir.path('home') };
  await mkdir(dir.path('in'));
  await writeFile(dir.path('secret.txt'), SECRET);
  await writeFile(dir.path('in', 'secret.onnx'), secretModel('secret.txt'));
  await writeFile(dir.path('in', 'half.onnx'), halvingModel());
  await writeFile(dir.path('in', 'bright.onnx'), nanOnBrightModel());
  await writeFile(dir.path('in', 'zoo.onnx'), zooLikeModel());
  await writeImage(dir.path('in', 'photo.png'), smoothImage(40, 30));
  await writeImage(dir.path('in', 'white.png'), imageFrom(24, 16, () => 255));
});

after(async () => {
  await clearModelCache();
  await dir.cleanup();
});

const show = (r: CliResult): string => `exit ${r.code}${r.signal ? ` (${r.signal})` : ''}\nstdout: ${r.stdout}\nstderr: ${JSON.stringify(r.stderr)}`;

interface DoorCase {
  readonly name: string;
  /** Arguments; OUT is the case's own empty output folder. */
  readonly args: (out: string) => string[];
  /** The whole line expected on stderr (a function: paths are known once the scratch folder is). */
  readonly line: () => RegExp;
  /** Working directory (default the project root). */
  readonly cwd?: string;
  readonly measureRss?: boolean;
  readonly skip?: () => Promise<string | false>;
}

const inp = (name: string): string => dir.path('in', name);
/** A file's path as a regular expression source. */
const re = (name: string): string => inp(name).replace(/[.*+?^${}()|[\]\\]/g, '\\$&');

/** Whether this machine can make a CUDA session (then the cuda case has nothing to show). */
async function cudaLoads(): Promise<string | false> {
  const ok = await loadModel(zooLikeModel(), { executionProvider: 'cuda' }).then(() => true, () => false);
  return ok ? 'the CUDA provider loads on this machine' : false;
}

const CASES: DoorCase[] = [
  {
    name: 'models import of a model whose initializer reads ./secret.txt',
    cwd: '', // the scratch folder, where the secret is: onnxruntime resolves external data there
    args: () => ['models', 'import', inp('secret.onnx')],
    line: () => new RegExp(`^pastiche: ${re('secret.onnx')}: initializer "secret" refers to external data in "secret\\.txt"; pastiche only opens models that hold all their weights inside the file$`),
  },
  {
    name: 'stylize --model <that file>',
    cwd: '',
    args: (out) => ['stylize', inp('photo.png'), '--model', inp('secret.onnx'), '-o', `${out}/x.png`],
    line: () => new RegExp(`^pastiche: ${re('secret.onnx')}: initializer "secret" refers to external data in "secret\\.txt"; `),
  },
  {
    name: 'models import /dev/zero (memory stays bounded)',
    measureRss: true,
    args: () => ['models', 'import', '/dev/zero', '--name', 'zero'],
    line: () => /^pastiche: \/dev\/zero: not a regular file \(a character device\)$/,
  },
  {
    name: 'models import of a network that halves the size',
    args: () => ['models', 'import', inp('half.onnx')],
    line: () => new RegExp(`^pastiche: ${re('half.onnx')}: a style model must return an image the size of its input, but for \\[1, 3, 64, 64\\] it returned \\[1, 3, 32, 32\\]$`),
  },
  {
    name: 'stylize with a model that produces NaN on this image',
    args: (out) => ['stylize', inp('white.png'), '-m', inp('bright.onnx'), '-o', `${out}/x.png`],
    line: () => new RegExp(`^pastiche: ${re('bright.onnx')}: produced non-finite values \\(NaN or Infinity in \\d+ of \\d+ outputs\\)$`),
  },
  {
    name: '--execution-provider cuda where it is not installed',
    skip: cudaLoads,
    args: (out) => ['stylize', inp('photo.png'), '-m', inp('zoo.onnx'), '--execution-provider', 'cuda', '-o', `${out}/x.png`],
    line: () => /^pastiche: Execution provider 'cuda' is not available here \(onnxruntime-node could not load it: [^)]*\); available: cpu\b[a-z, ]*$/,
  },
];

test('the model door from the command line: exit 1, one line, source unchanged, nothing stored or written', { concurrency: 2 }, async (t) => {
  await Promise.all(CASES.map((c, i) => t.test(c.name, async (st) => {
    const skip = await c.skip?.();
    if (skip) return st.skip(skip);
    const out = dir.path('out', String(i));
    await mkdir(out, { recursive: true });
    const inputs = await snapshotTree(dir.path('in'));
    const r = await runCli(c.args(out), { env, cwd: c.cwd === undefined ? undefined : dir.dir, measureRss: c.measureRss });
    assert.equal(r.code, 1, show(r));
    assert.equal(r.errorLines.length, 1, `expected one line on stderr: ${show(r)}`);
    assert.match(r.errorLines[0], c.line());
    assert.ok(!r.stderr.includes('\u001b') && !/\[[EW]:onnxruntime/.test(r.stderr), `no raw onnxruntime log: ${show(r)}`);
    assert.ok(!r.stdout.includes(SECRET) && !r.stderr.includes(SECRET));
    assert.equal(r.stdout, '');
    assert.deepEqual(await snapshotTree(dir.path('in')), inputs, 'the inputs are unchanged');
    assert.deepEqual(await listTree(out), [], 'nothing written');
    assert.deepEqual(await listTree(dir.path('home')), [], 'nothing in the store');
    if (c.measureRss) assert.ok(r.peakRssMiB! < 600, `peak RSS ${r.peakRssMiB} MiB`);
  })));
});
