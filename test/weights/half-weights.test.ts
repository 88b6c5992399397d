/**
 * float16 weight storage: the float → half rounding against every half value and its neighbours,
 * and a packed network run by onnxruntime as it is (Cast nodes) against the door's unpacked copy
 * and the float32 original.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import onnxProto from 'onnx-proto';
import { floatToHalf, packHalfWeights, unpackHalfWeights } from '../../src/weights/half-weights.js';
import { halfToFloat } from '../../src/weights/dtypes.js';
import { admitOnnx } from '../../src/weights/model-door.js';
import { decodeOnnx, encodeOnnx } from '../../src/weights/onnx-file.js';
import { withModel } from '../../src/runtime/index.js';
import { tinyTransformerModel } from '../helpers/models.js';
import { rng } from '../helpers/random.js';
import { psnr } from '../helpers/compare.js';

test('floatToHalf inverts halfToFloat on every finite half and rounds to the nearest half, ties to even', () => {
  for (let h = 0; h < 0x10000; h++) {
    const value = halfToFloat(h);
    if (Number.isNaN(value)) {
      assert.ok(Number.isNaN(halfToFloat(floatToHalf(value))));
      continue;
    }
    // -0 and +0 keep their sign bits.
    assert.equal(floatToHalf(value), h, `half 0x${h.toString(16)} (${value})`);
  }
  const random = rng(7);
  for (let i = 0; i < 20000; i++) {
    // Magnitudes from subnormal halves to beyond the largest one.
    const x = (random() < 0.5 ? -1 : 1) * Math.fround(2 ** (random() * 44 - 26) * (1 + random()));
    const h = floatToHalf(x);
    const got = halfToFloat(h);
    if (Math.abs(x) >= 65520) {
      assert.equal(got, Math.sign(x) * Infinity, `${x} overflows to infinity`);
      continue;
    }
    // No other half is nearer: compare with both neighbours of the result (same sign).
    for (const n of [h - 1, h + 1]) {
      if ((n & 0x7fff) === 0x7fff || (n & 0x7c00) === 0x7c00 || n < 0 || (n ^ h) & 0x8000) continue;
      const other = halfToFloat(n);
      const d = Math.abs(got - x);
      const dOther = Math.abs(other - x);
      assert.ok(d < dOther || (d === dOther && (h & 1) === 0), `${x} → ${got} but ${other} is nearer`);
    }
  }
  assert.equal(floatToHalf(Infinity), 0x7c00);
  assert.equal(floatToHalf(-Infinity), 0xfc00);
  assert.equal(floatToHalf(1e-9), 0);
});

test('a packed network is half the size, runs as it is in onnxruntime, and the door unpacks it to the rounded weights', async () => {
  const original = tinyTransformerModel('pytorch-examples', { widths: [16, 32, 64], blocks: 2, seed: 11 });
  const model = decodeOnnx(original, 'tiny');
  const packed = packHalfWeights(model);
  assert.ok(packed > 10, `only ${packed} initializers packed`);
  const bytes = encodeOnnx(model);
  assert.ok(bytes.byteLength < original.byteLength * 0.6, `${bytes.byteLength} bytes packed vs ${original.byteLength}`);

  // The door gives back float32 initializers equal to the float16-rounded originals, under the original names.
  const unpacked = admitOnnx(bytes, 'packed').model;
  assert.ok(!unpacked.graph!.node!.some((n) => n.opType === 'Cast' && n.input![0].endsWith('.fp16')));
  const before = new Map(decodeOnnx(original, 'tiny').graph!.initializer!.map((t) => [t.name!, t]));
  for (const t of unpacked.graph!.initializer!) {
    const source = before.get(t.name!);
    assert.ok(source, `unexpected initializer ${t.name}`);
    assert.equal(t.dataType, source.dataType, `${t.name}: data type`);
    if (t.dataType !== onnxProto.onnx.TensorProto.DataType.FLOAT) continue;
    const a = new Float32Array(new Uint8Array(t.rawData!).buffer);
    const b = new Float32Array(new Uint8Array(source.rawData!).buffer);
    assert.equal(a.length, b.length);
    const small = b.length < 256;
    for (let i = 0; i < a.length; i++) assert.equal(a[i], small ? b[i] : halfToFloat(floatToHalf(b[i])), `${t.name}[${i}]`);
  }
  assert.equal(unpackHalfWeights(unpacked), 0, 'unpacking twice changes nothing');

  // Same output from the packed file (onnxruntime's Cast) and the unpacked one; close to float32.
  const random = rng(3);
  const input = Float32Array.from({ length: 3 * 40 * 48 }, () => random() * 255);
  const run = (b: Uint8Array): Promise<Float32Array> => withModel(b, { threads: 1 }, 'half', async (session) =>
    (await session.run({ [session.inputNames[0]]: { data: input, dims: [1, 3, 40, 48] } }))[session.outputNames[0]].data);
  const [fromPacked, fromUnpacked, fromOriginal] = await Promise.all([run(bytes), run(encodeOnnx(unpacked)), run(original)]);
  assert.ok(psnr(fromPacked, fromUnpacked) > 90, `packed vs unpacked ${psnr(fromPacked, fromUnpacked)} dB`);
  assert.ok(psnr(fromPacked, fromOriginal) > 45, `packed vs float32 ${psnr(fromPacked, fromOriginal).toFixed(1)} dB`);
});
