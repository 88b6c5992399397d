/**
 * safetensors: F32 write → read round trip with metadata, half-precision reads from a file laid
 * out by hand, VGG weights in either naming, and malformed files.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFile, writeFile } from 'node:fs/promises';
import { encodeSafetensors, readSafetensors, readSafetensorsHeader, writeSafetensors } from '../../src/weights/safetensors.js';
import { loadVggWeights } from '../../src/weights/vgg-weights.js';
import { vggParamShapes } from '../../src/nets/vgg.js';
import { FileError } from '../../src/util/errors.js';
import type { Tensor } from '../../src/graph/index.js';
import { randomTensor } from '../helpers/random.js';
import { listTree, scratch, tempLeftovers } from '../helpers/files.js';

/** A safetensors file from a header object and raw data bytes. */
function handMade(header: Record<string, unknown>, data: Uint8Array): Uint8Array {
  const json = Buffer.from(JSON.stringify(header));
  const length = Buffer.alloc(8);
  length.writeBigUInt64LE(BigInt(json.length));
  return Buffer.concat([length, json, data]);
}

test('F32 round trip keeps names, order, shapes, values and metadata; the data is 8-byte aligned', async () => {
  const s = await scratch();
  try {
    const tensors = new Map<string, Tensor>([
      ['conv.weight', randomTensor([4, 3, 3, 3], 1)],
      ['conv.bias', randomTensor([4], 2)],
      ['scalar', { data: Float32Array.of(3.5), shape: [] }],
      ['empty', { data: new Float32Array(0), shape: [0, 2] }],
    ]);
    const path = s.path('ckpt', 'step-1.safetensors');
    await writeSafetensors(path, tensors, { step: '1', 'pastiche.architecture': 'lengstrom' });
    assert.deepEqual(tempLeftovers(await listTree(s.dir)), []);
    const { tensors: back, metadata } = await readSafetensors(path);
    assert.deepEqual(metadata, { step: '1', 'pastiche.architecture': 'lengstrom' });
    assert.deepEqual([...back.keys()], [...tensors.keys()]);
    for (const [name, t] of tensors) assert.deepEqual(back.get(name), { data: t.data, shape: t.shape }, name);
    const bytes = await readFile(path);
    assert.equal(Number(bytes.readBigUInt64LE(0)) % 8, 0);
    assert.deepEqual(bytes, Buffer.from(encodeSafetensors(tensors, { step: '1', 'pastiche.architecture': 'lengstrom' })));
    const only = await readSafetensors(path, ['conv.bias']);
    assert.deepEqual([...only.tensors.keys()], ['conv.bias']);
    assert.throws(() => encodeSafetensors(new Map([['bad', { data: new Float32Array(3), shape: [2, 2] }]])), RangeError);
  } finally {
    await s.cleanup();
  }
});

test('F16, BF16 and F64 tensors are read as float32', async () => {
  const s = await scratch();
  try {
    const f16 = Uint16Array.of(0x3c00, 0xc000, 0x3800, 0x7bff, 0x0001, 0x7c00, 0x8000); // 1, -2, 0.5, 65504, 2^-24, inf, -0
    const bf16 = Uint16Array.of(0x3f80, 0xc0a0, 0x4049); // 1, -5, 3.140625
    const f64 = Float64Array.of(0.1, -1e10);
    const data = Buffer.concat([Buffer.from(f16.buffer), Buffer.from(bf16.buffer), Buffer.from(f64.buffer)]);
    const path = s.path('half.safetensors');
    await writeFile(path, handMade({
      h: { dtype: 'F16', shape: [7], data_offsets: [0, 14] },
      b: { dtype: 'BF16', shape: [3], data_offsets: [14, 20] },
      d: { dtype: 'F64', shape: [2], data_offsets: [20, 36] },
    }, data));
    const { tensors, metadata } = await readSafetensors(path);
    assert.deepEqual(metadata, {});
    assert.deepEqual([...tensors.get('h')!.data], [1, -2, 0.5, 65504, 2 ** -24, Infinity, -0]);
    assert.deepEqual([...tensors.get('b')!.data], [1, -5, 3.140625]);
    assert.deepEqual([...tensors.get('d')!.data], [Math.fround(0.1), -1e10]);
  } finally {
    await s.cleanup();
  }
});

test('VGG weights in safetensors: pastiche names with declared preprocessing, or torchvision names', async () => {
  const s = await scratch();
  try {
    const shapes = vggParamShapes(16, 'relu1_2');
    const params = new Map([...shapes].map(([name, shape], i): [string, Tensor] => [name, randomTensor(shape, 100 + i)]));
    const own = s.path('vgg16-block1.safetensors');
    await writeSafetensors(own, params, { 'pastiche.preprocessing': 'torch' });
    const a = await loadVggWeights(own, { depth: 16, lastTap: 'relu1_2' });
    assert.equal(a.format, 'safetensors');
    assert.equal(a.preprocessing, 'torch');
    assert.deepEqual(a.params, params);

    const torchvision = s.path('tv.safetensors');
    await writeSafetensors(torchvision, new Map([...params].map(([name, t]): [string, Tensor] => [name.replace('block1_conv1', 'features.0').replace('block1_conv2', 'features.2'), t])));
    const b = await loadVggWeights(torchvision, { lastTap: 'relu1_2' });
    assert.equal(b.preprocessing, 'torch');
    assert.deepEqual(b.params, params);
  } finally {
    await s.cleanup();
  }
});

test('malformed safetensors files are FileErrors naming the file', async () => {
  const s = await scratch();
  try {
    const good = handMade({ x: { dtype: 'F32', shape: [2], data_offsets: [0, 8] } }, new Uint8Array(8));
    const cases: [string, Uint8Array, RegExp][] = [
      ['short', Buffer.from('abc'), /too short/],
      ['huge-header', Buffer.concat([Buffer.from([0xff, 0xff, 0xff, 0xff, 0, 0, 0, 0]), Buffer.from('{}')]), /header length/],
      ['not-json', handMade({}, new Uint8Array()).fill(0x41, 8), /not valid JSON/],
      ['truncated', good.subarray(0, good.length - 4), /outside the file/],
      ['size-mismatch', handMade({ x: { dtype: 'F32', shape: [3], data_offsets: [0, 8] } }, new Uint8Array(8)), /needs 12 bytes but has 8/],
      ['no-offsets', handMade({ x: { dtype: 'F32', shape: [2] } }, new Uint8Array(8)), /data_offsets/],
    ];
    for (const [name, bytes, pattern] of cases) {
      const path = s.path(`${name}.safetensors`);
      await writeFile(path, bytes);
      await assert.rejects(readSafetensorsHeader(path), (e: Error) => e instanceof FileError && e.message.startsWith(path) && pattern.test(e.message), name);
    }
    const path = s.path('i64.safetensors');
    await writeFile(path, handMade({ x: { dtype: 'C64', shape: [1], data_offsets: [0, 8] } }, new Uint8Array(8)));
    await assert.rejects(readSafetensors(path), /dtype C64, which pastiche cannot read/);
  } finally {
    await s.cleanup();
  }
});
