/**
 * safetensors: an 8-byte little-endian header length, a JSON header
 * `{ name: { dtype, shape, data_offsets: [begin, end] }, __metadata__?: { string: string } }`
 * (offsets relative to the end of the header), then the tensor bytes, little-endian, row-major.
 * Read: F32, F16, BF16, F64 (and integer types widened to float32). Written: F32, atomically.
 */
import { open, stat, writeFile } from 'node:fs/promises';
import type { Tensor } from '../graph/index.js';
import { writeAtomically } from '../util/atomic.js';
import { FileError, messageOf } from '../util/errors.js';
import { BYTES, decodeLittleEndian, type NumericType } from './dtypes.js';
import { selectNames, type TensorSource, type Wanted } from './tensor-source.js';

const DTYPES: Record<string, NumericType> = {
  F32: 'float32', F16: 'float16', BF16: 'bfloat16', F64: 'float64', I64: 'int64', I32: 'int32', I16: 'int16', I8: 'int8', U8: 'uint8', BOOL: 'bool',
};

/** Headers larger than this are refused rather than parsed (the format's own reference limit). */
const MAX_HEADER = 100_000_000;

export interface SafetensorsEntry {
  readonly dtype: string;
  readonly shape: readonly number[];
  /** Absolute byte range in the file. */
  readonly begin: number;
  readonly end: number;
}

export interface SafetensorsHeader {
  readonly entries: Map<string, SafetensorsEntry>;
  readonly metadata: Record<string, string>;
}

/**
 * Reads and checks a safetensors header (no tensor data).
 * @throws FileError naming the file for a malformed or inconsistent header.
 */
export async function readSafetensorsHeader(path: string): Promise<SafetensorsHeader> {
  let handle;
  try {
    handle = await open(path, 'r');
  } catch (error) {
    throw new FileError(path, `cannot read safetensors file (${messageOf(error)})`, { cause: error });
  }
  try {
    const size = (await handle.stat()).size;
    const prefix = Buffer.alloc(8);
    if (size < 8 || (await handle.read(prefix, 0, 8, 0)).bytesRead !== 8) throw new FileError(path, 'is too short to be a safetensors file');
    const headerLength = Number(prefix.readBigUInt64LE(0));
    if (headerLength < 2 || headerLength > MAX_HEADER || 8 + headerLength > size) {
      throw new FileError(path, `is not a safetensors file (header length ${headerLength} does not fit a ${size}-byte file)`);
    }
    const text = Buffer.alloc(headerLength);
    await handle.read(text, 0, headerLength, 8);
    let json: unknown;
    try {
      json = JSON.parse(text.toString('utf8'));
    } catch (error) {
      throw new FileError(path, `has a safetensors header that is not valid JSON (${messageOf(error)})`, { cause: error });
    }
    if (json === null || typeof json !== 'object' || Array.isArray(json)) throw new FileError(path, 'has a safetensors header that is not an object');
    const dataStart = 8 + headerLength;
    const entries = new Map<string, SafetensorsEntry>();
    let metadata: Record<string, string> = {};
    for (const [name, value] of Object.entries(json)) {
      if (name === '__metadata__') {
        metadata = Object.fromEntries(Object.entries(value ?? {}).map(([k, v]) => [k, String(v)]));
        continue;
      }
      const { dtype, shape, data_offsets: offsets } = (value ?? {}) as { dtype?: unknown; shape?: unknown; data_offsets?: unknown };
      if (typeof dtype !== 'string' || !Array.isArray(shape) || !shape.every((d) => Number.isInteger(d) && d >= 0)
        || !Array.isArray(offsets) || offsets.length !== 2 || !offsets.every((o) => Number.isInteger(o) && o >= 0)) {
        throw new FileError(path, `tensor '${name}' needs dtype, integer shape and two data_offsets`);
      }
      const [begin, end] = offsets as [number, number];
      if (begin > end || dataStart + end > size) throw new FileError(path, `tensor '${name}' lies outside the file (truncated?)`);
      const count = shape.reduce((a: number, b: number) => a * b, 1);
      const bytes = DTYPES[dtype] ? BYTES[DTYPES[dtype]] : undefined;
      if (bytes !== undefined && end - begin !== count * bytes) {
        throw new FileError(path, `tensor '${name}' of ${dtype} [${shape.join(', ')}] needs ${count * bytes} bytes but has ${end - begin}`);
      }
      entries.set(name, { dtype, shape, begin: dataStart + begin, end: dataStart + end });
    }
    return { entries, metadata };
  } finally {
    await handle.close();
  }
}

/** Opens a safetensors file as a tensor source, with its `__metadata__`. */
export async function openSafetensors(path: string): Promise<TensorSource & { metadata: Record<string, string> }> {
  const { entries, metadata } = await readSafetensorsHeader(path);
  return {
    path,
    metadata,
    shapes: new Map([...entries].map(([name, e]) => [name, e.shape])),
    async read(names) {
      const tensors = new Map<string, Tensor>();
      const handle = await open(path, 'r');
      try {
        for (const name of names) {
          const entry = entries.get(name);
          if (!entry) throw new FileError(path, `has no tensor '${name}'`);
          const dtype = DTYPES[entry.dtype];
          if (!dtype) throw new FileError(path, `tensor '${name}' has dtype ${entry.dtype}, which pastiche cannot read`);
          const bytes = new Uint8Array(entry.end - entry.begin);
          await handle.read(bytes, 0, bytes.length, entry.begin);
          tensors.set(name, { data: decodeLittleEndian(bytes, dtype), shape: entry.shape });
        }
      } finally {
        await handle.close();
      }
      return tensors;
    },
  };
}

/**
 * Reads tensors (all when `wanted` is omitted) of a safetensors file as float32.
 * @throws FileError naming the file for malformed headers, unknown names or unsupported dtypes.
 */
export async function readSafetensors(path: string, wanted?: Wanted): Promise<{ tensors: Map<string, Tensor>; metadata: Record<string, string> }> {
  const source = await openSafetensors(path);
  return { tensors: await source.read(selectNames(source.shapes.keys(), wanted)), metadata: source.metadata };
}

/** The bytes of a safetensors file holding `tensors` as F32. */
export function encodeSafetensors(tensors: ReadonlyMap<string, Tensor>, metadata: Record<string, string> = {}): Uint8Array {
  const header: Record<string, unknown> = {};
  if (Object.keys(metadata).length > 0) header.__metadata__ = metadata;
  let offset = 0;
  for (const [name, t] of tensors) {
    if (name === '__metadata__') throw new RangeError(`Expected a tensor name other than '__metadata__'`);
    const count = t.shape.reduce((a, b) => a * b, 1);
    if (count !== t.data.length) throw new RangeError(`Expected ${count} values for tensor '${name}' of shape [${t.shape.join(', ')}] but received ${t.data.length}`);
    header[name] = { dtype: 'F32', shape: [...t.shape], data_offsets: [offset, offset + count * 4] };
    offset += count * 4;
  }
  let json = Buffer.from(JSON.stringify(header), 'utf8');
  // Pad with spaces so the tensor data starts 8-byte aligned, as the reference writer does.
  const padded = Math.ceil(json.length / 8) * 8;
  if (padded !== json.length) json = Buffer.concat([json, Buffer.alloc(padded - json.length, 0x20)]);
  const out = new Uint8Array(8 + json.length + offset);
  new DataView(out.buffer).setBigUint64(0, BigInt(json.length), true);
  out.set(json, 8);
  let at = 8 + json.length;
  for (const t of tensors.values()) {
    out.set(new Uint8Array(t.data.buffer, t.data.byteOffset, t.data.byteLength), at);
    at += t.data.byteLength;
  }
  return out;
}

/**
 * Writes `tensors` as an F32 safetensors file, atomically (a temporary file renamed into place).
 * @example await writeSafetensors('ckpt.safetensors', params, { step: '1000' });
 * @throws RangeError for a tensor whose data does not match its shape; FileError when the
 * folder cannot be written.
 */
export async function writeSafetensors(path: string, tensors: ReadonlyMap<string, Tensor>, metadata: Record<string, string> = {}): Promise<void> {
  const bytes = encodeSafetensors(tensors, metadata);
  await writeAtomically(path, (temp) => writeFile(temp, bytes));
}

/** True when the file's first bytes read as a safetensors header length followed by '{'. */
export async function looksLikeSafetensors(path: string): Promise<boolean> {
  const handle = await open(path, 'r');
  try {
    const size = (await stat(path)).size;
    const head = Buffer.alloc(9);
    if ((await handle.read(head, 0, 9, 0)).bytesRead < 9) return false;
    const n = Number(head.readBigUInt64LE(0));
    return head[8] === 0x7b && n >= 2 && 8 + n <= size;
  } finally {
    await handle.close();
  }
}
