/** The inert unpickler: values of each opcode family, where a pickle ends, and refusals. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { PickleError, PickleGlobal, PickleTruncatedError, unpickle } from '../../src/weights/pickle.js';

const bytes = (...parts: (number | string)[]): Uint8Array =>
  Uint8Array.from(parts.flatMap((p) => (typeof p === 'number' ? [p] : [...Buffer.from(p, 'latin1')])));

test('numbers, strings, containers and memo; the end offset allows pickles back to back', () => {
  const pickle = bytes(
    0x80, 2, 0x7d, 0x71, 0, 0x28, // PROTO, EMPTY_DICT, BINPUT 0, MARK
    0x55, 1, 'a', 0x8a, 2, 0x00, 0xff, // 'a': LONG1 -256
    0x55, 1, 'b', 0x47, ...Buffer.from(Float64Array.of(1.5).buffer).reverse(), // 'b': BINFLOAT 1.5 (big-endian)
    0x58, 1, 0, 0, 0, 'c', 0x4a, 0xff, 0xff, 0xff, 0xff, 0x4d, 0x34, 0x12, 0x86, // 'c': (BININT -1, BININT2 0x1234)
    0x55, 1, 'd', 0x5d, 0x28, 0x88, 0x89, 0x4e, 0x65, // 'd': [True, False, None]
    0x55, 1, 'e', 0x68, 0, // 'e': the dict itself (BINGET 0)
    0x75, 0x2e, // SETITEMS, STOP
    0x80, 2, 0x4b, 7, 0x2e, // a second pickle: 7
  );
  const first = unpickle(pickle);
  const dict = first.value as Map<string, unknown>;
  assert.equal(dict.get('a'), -256);
  assert.equal(dict.get('b'), 1.5);
  assert.deepEqual(dict.get('c'), [-1, 0x1234]);
  assert.deepEqual(dict.get('d'), [true, false, null]);
  assert.equal(dict.get('e'), dict);
  assert.equal(unpickle(pickle, first.end).value, 7);
});

test('globals are inert markers and calls go through the hook', () => {
  const pickle = bytes(0x80, 2, 0x63, 'os\nsystem\n', 0x55, 2, 'ls', 0x85, 0x52, 0x2e); // os.system('ls')
  const seen: unknown[] = [];
  const { value } = unpickle(pickle, 0, { call: (callable, args) => (seen.push(callable, args), 'not run') });
  assert.equal(value, 'not run');
  assert.ok(seen[0] instanceof PickleGlobal && seen[0].toString() === 'os.system');
  assert.deepEqual(seen[1], ['ls']);
  assert.deepEqual((unpickle(pickle).value as { args: unknown[] }).args, ['ls']);
});

test('truncated data, unknown opcodes and persistent ids without a loader are refused', () => {
  assert.throws(() => unpickle(bytes(0x80, 2, 0x58, 9, 0, 0, 0, 'ab')), PickleTruncatedError);
  assert.throws(() => unpickle(bytes(0x80, 2, 0x4b)), PickleTruncatedError);
  assert.throws(() => unpickle(bytes(0x80, 2, 0xff)), /unsupported pickle opcode 0xff at byte 2/);
  assert.throws(() => unpickle(bytes(0x80, 2, 0x4e, 0x51, 0x2e)), /persistent id/);
  assert.throws(() => unpickle(bytes(0x80, 2, 0x30, 0x2e)), PickleError);
});
