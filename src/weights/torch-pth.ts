/**
 * PyTorch `torch.save` files holding a state dict (name → tensor), in both layouts:
 *  - zip (PyTorch ≥ 1.6): `<archive>/data.pkl` + raw storages `<archive>/data/<key>`;
 *  - legacy (before 1.6, e.g. torchvision's `vgg19-dcbb9e9d.pth`): pickles of a magic number, the
 *    protocol version and system info, then the state dict, then the list of storage keys, then
 *    each storage as an int64 element count and its raw bytes.
 * Tensors are `torch._utils._rebuild_tensor(_v2)(storage, offset, size, stride, …)`, storages are
 * persistent ids `('storage', torch.FloatStorage, key, location, numel[, view])`. Only the storage
 * bytes of the tensors asked for are read. Nested dicts are flattened with '.' (`state_dict.x`).
 */
import { open, stat, type FileHandle } from 'node:fs/promises';
import type { Readable } from 'node:stream';
import yauzl from 'yauzl';
import type { Tensor } from '../graph/index.js';
import { FileError, messageOf } from '../util/errors.js';
import { BYTES, decodeLittleEndian, type NumericType } from './dtypes.js';
import { PickleGlobal, PickleTruncatedError, unpickle, type PickleCall, type PickleHooks } from './pickle.js';
import { selectNames, type TensorSource, type Wanted } from './tensor-source.js';

const STORAGE_TYPES: Record<string, NumericType> = {
  FloatStorage: 'float32', DoubleStorage: 'float64', HalfStorage: 'float16', BFloat16Storage: 'bfloat16',
  LongStorage: 'int64', IntStorage: 'int32', ShortStorage: 'int16', CharStorage: 'int8', ByteStorage: 'uint8', BoolStorage: 'bool',
  UntypedStorage: 'uint8',
};

const LEGACY_MAGIC = 0x1950a86a20f9469cfc6cn;
const LEGACY_PROTOCOL = 1001;

interface StorageRef {
  readonly key: string;
  readonly dtype: NumericType;
  readonly numel: number;
  /** Element offset of a legacy storage view into its root storage. */
  readonly viewOffset: number;
}

interface TensorRef {
  readonly storage: StorageRef;
  readonly offset: number;
  readonly shape: readonly number[];
  readonly stride: readonly number[];
}

const isTensorRef = (v: unknown): v is TensorRef => v !== null && typeof v === 'object' && 'storage' in v && 'stride' in v;

/** Pickle hooks for torch files; every storage met is recorded in `storages`. */
function hooksFor(path: string, storages = new Map<string, StorageRef>()): PickleHooks {
  return {
    persistentLoad(pid) {
      if (!Array.isArray(pid) || pid[0] !== 'storage') throw new FileError(path, `unknown persistent id ${JSON.stringify(String(pid))}`);
      const [, type, key, , numel, view] = pid as [string, unknown, unknown, unknown, unknown, unknown];
      const dtype = type instanceof PickleGlobal ? STORAGE_TYPES[type.name] : undefined;
      if (!dtype) throw new FileError(path, `storage of unsupported type ${String(type)}`);
      const viewOffset = Array.isArray(view) ? Number(view[1]) : 0;
      const storage: StorageRef = { key: String(key), dtype, numel: Number(numel), viewOffset };
      if (!storages.has(storage.key) || viewOffset === 0) storages.set(storage.key, storage);
      return storage;
    },
    call(callable, args) {
      const name = callable instanceof PickleGlobal ? callable.toString() : '';
      if (name === 'collections.OrderedDict') return new Map(Array.isArray(args[0]) ? (args[0] as [unknown, unknown][]) : []);
      if (name === 'torch._utils._rebuild_tensor_v2' || name === 'torch._utils._rebuild_tensor') {
        const [storage, offset, shape, stride] = args as [StorageRef, number, number[], number[]];
        if (!storage || typeof storage !== 'object' || !Array.isArray(shape) || !Array.isArray(stride)) throw new FileError(path, `malformed tensor in ${name}`);
        return { storage, offset: Number(offset), shape: shape.map(Number), stride: stride.map(Number) } satisfies TensorRef;
      }
      if (name === 'torch._utils._rebuild_parameter' || name === 'torch._utils._rebuild_parameter_with_state') return args[0];
      return { callable, args } satisfies PickleCall;
    },
  };
}

/** Flattens nested dicts of tensors into dotted names. */
function collectTensors(value: unknown, path: string): Map<string, TensorRef> {
  const tensors = new Map<string, TensorRef>();
  const walk = (v: unknown, prefix: string): void => {
    if (!(v instanceof Map)) return;
    for (const [key, item] of v) {
      const name = `${prefix}${String(key)}`;
      if (isTensorRef(item)) tensors.set(name, item);
      else walk(item, `${name}.`);
    }
  };
  walk(value, '');
  if (tensors.size === 0) {
    const what = value !== null && typeof value === 'object' && 'callable' in value ? `a pickled ${String((value as PickleCall).callable)} object` : 'no tensors';
    throw new FileError(path, `holds ${what}, not a state dict (save model.state_dict() instead)`);
  }
  return tensors;
}

/** Elements spanned by a strided tensor from its first element. */
function span(t: TensorRef): number {
  if (t.shape.some((d) => d === 0)) return 0;
  return 1 + t.shape.reduce((sum, d, i) => sum + (d - 1) * t.stride[i], 0);
}

/** Gathers a (possibly non-contiguous) tensor from its storage elements starting at its offset. */
function gather(elements: Float32Array, t: TensorRef): Float32Array {
  const count = t.shape.reduce((a, b) => a * b, 1);
  let contiguous = true;
  for (let i = t.shape.length - 1, s = 1; i >= 0; s *= t.shape[i], i--) if (t.shape[i] > 1 && t.stride[i] !== s) contiguous = false;
  if (contiguous) return elements.length === count ? elements : elements.slice(0, count);
  const out = new Float32Array(count);
  const index = new Array<number>(t.shape.length).fill(0);
  let src = 0;
  for (let o = 0; o < count; o++) {
    out[o] = elements[src];
    for (let axis = t.shape.length - 1; axis >= 0; axis--) {
      index[axis]++;
      src += t.stride[axis];
      if (index[axis] < t.shape[axis]) break;
      src -= t.stride[axis] * t.shape[axis];
      index[axis] = 0;
    }
  }
  return out;
}

type ReadRange = (storage: StorageRef, startElement: number, count: number) => Promise<Uint8Array>;

function makeSource(path: string, tensors: Map<string, TensorRef>, readRange: ReadRange, close: () => Promise<void>): TensorSource & { close(): Promise<void> } {
  return {
    path,
    shapes: new Map([...tensors].map(([name, t]) => [name, t.shape])),
    async read(names) {
      const out = new Map<string, Tensor>();
      for (const name of names) {
        const t = tensors.get(name);
        if (!t) throw new FileError(path, `has no tensor '${name}'`);
        const n = span(t);
        if (t.storage.viewOffset + t.offset + n > t.storage.numel) throw new FileError(path, `tensor '${name}' reaches past the end of its storage`);
        const bytes = await readRange(t.storage, t.offset, n);
        out.set(name, { data: gather(decodeLittleEndian(bytes, t.storage.dtype, n), t), shape: t.shape });
      }
      return out;
    },
    close,
  };
}

async function streamBytes(stream: Readable, length: number): Promise<Uint8Array> {
  const out = new Uint8Array(length);
  let at = 0;
  for await (const chunk of stream) {
    const c = chunk as Buffer;
    out.set(c.subarray(0, Math.min(c.length, length - at)), at);
    at += c.length;
  }
  if (at !== length) throw new Error(`expected ${length} bytes, read ${at}`);
  return out;
}

async function openZip(path: string): Promise<TensorSource & { close(): Promise<void> }> {
  let zip: yauzl.ZipFile;
  try {
    zip = await yauzl.openPromise(path, { lazyEntries: true, autoClose: false });
  } catch (error) {
    throw new FileError(path, `is not a readable zip archive (${messageOf(error)})`, { cause: error });
  }
  const close = async (): Promise<void> => zip.close();
  try {
    const entries = new Map<string, yauzl.Entry>();
    for await (const entry of zip.eachEntry()) entries.set(entry.fileName, entry);
    const pkl = [...entries.keys()].find((name) => /^[^/]+\/data\.pkl$/.test(name));
    if (!pkl) throw new FileError(path, 'is a zip archive without <name>/data.pkl: not a PyTorch file');
    const prefix = pkl.slice(0, -'data.pkl'.length);
    const readEntry = async (entry: yauzl.Entry, start?: number, end?: number): Promise<Uint8Array> => {
      const ranged = start !== undefined && entry.compressionMethod === 0;
      const stream = await zip.openReadStreamPromise(entry, ranged ? { decodeFileData: false, start, end } : {});
      const whole = await streamBytes(stream, ranged ? end! - start! : entry.uncompressedSize);
      return ranged || start === undefined ? whole : whole.subarray(start, end);
    };
    const order = entries.get(`${prefix}byteorder`);
    if (order && new TextDecoder().decode(await readEntry(order)).trim() !== 'little') throw new FileError(path, 'stores big-endian tensors, which pastiche cannot read');
    const value = unpickle(await readEntry(entries.get(pkl)!), 0, hooksFor(path)).value;
    const tensors = collectTensors(value, path);
    const readRange: ReadRange = async (storage, start, count) => {
      const entry = entries.get(`${prefix}data/${storage.key}`);
      if (!entry) throw new FileError(path, `lacks storage ${prefix}data/${storage.key}`);
      const size = BYTES[storage.dtype];
      if (entry.uncompressedSize < (start + count) * size) throw new FileError(path, `storage ${storage.key} is shorter than its tensors need`);
      return readEntry(entry, start * size, (start + count) * size);
    };
    return makeSource(path, tensors, readRange, close);
  } catch (error) {
    await close();
    if (error instanceof FileError) throw error;
    throw new FileError(path, `cannot read PyTorch zip archive (${messageOf(error)})`, { cause: error });
  }
}

async function openLegacy(path: string, handle: FileHandle, size: number): Promise<TensorSource & { close(): Promise<void> }> {
  const close = (): Promise<void> => handle.close();
  // The pickles are small next to the storages behind them: read a growing prefix until they parse.
  for (let window = Math.min(size, 1 << 20); ; window = Math.min(size, window * 4)) {
    const buffer = new Uint8Array(window);
    await handle.read(buffer, 0, window, 0);
    let parsed;
    try {
      parsed = parseLegacyHeader(buffer, path);
    } catch (error) {
      if (error instanceof PickleTruncatedError && window < size) continue;
      await close();
      if (error instanceof FileError) throw error;
      if (error instanceof PickleTruncatedError) throw new FileError(path, 'is truncated: it ends inside its pickled header', { cause: error });
      throw new FileError(path, `is not a readable PyTorch file (${messageOf(error)})`, { cause: error });
    }
    const { tensors, keys, dataStart, storages } = parsed;
    // Locate every storage by walking the count headers: 8 bytes read per storage.
    const starts = new Map<string, number>();
    let at = dataStart;
    const header = Buffer.alloc(8);
    for (const key of keys) {
      const { bytesRead } = await handle.read(header, 0, 8, at);
      const count = Number(header.readBigInt64LE(0));
      const storage = storages.get(key);
      if (bytesRead !== 8 || count < 0 || !storage) {
        await close();
        throw new FileError(path, bytesRead !== 8 ? `is truncated: storage ${key} is missing` : `has a malformed storage ${key}`);
      }
      starts.set(key, at + 8);
      at += 8 + count * BYTES[storage.dtype];
    }
    if (at > size) {
      await close();
      throw new FileError(path, `is truncated: its storages need ${at} bytes but the file has ${size}`);
    }
    const readRange: ReadRange = async (storage, start, count) => {
      const base = starts.get(storage.key);
      if (base === undefined) throw new FileError(path, `lacks storage ${storage.key}`);
      const bytes = new Uint8Array(count * BYTES[storage.dtype]);
      await handle.read(bytes, 0, bytes.length, base + (storage.viewOffset + start) * BYTES[storage.dtype]);
      return bytes;
    };
    return makeSource(path, tensors, readRange, close);
  }
}

function parseLegacyHeader(buffer: Uint8Array, path: string): { tensors: Map<string, TensorRef>; storages: Map<string, StorageRef>; keys: string[]; dataStart: number } {
  const magic = unpickle(buffer, 0);
  if (magic.value !== LEGACY_MAGIC) throw new FileError(path, 'is a pickle but not a PyTorch file (no torch magic number)');
  const protocol = unpickle(buffer, magic.end);
  if (protocol.value !== LEGACY_PROTOCOL) throw new FileError(path, `has PyTorch legacy protocol ${String(protocol.value)}, expected ${LEGACY_PROTOCOL}`);
  const info = unpickle(buffer, protocol.end);
  if (info.value instanceof Map && info.value.get('little_endian') === false) throw new FileError(path, 'stores big-endian tensors, which pastiche cannot read');
  const storages = new Map<string, StorageRef>();
  const main = unpickle(buffer, info.end, hooksFor(path, storages));
  const keys = unpickle(buffer, main.end);
  if (!Array.isArray(keys.value)) throw new FileError(path, 'has no storage key list after its state dict');
  return { tensors: collectTensors(main.value, path), storages, keys: keys.value.map(String), dataStart: keys.end };
}

/**
 * Opens a PyTorch file (zip or legacy) holding a state dict; call `close` when done.
 * @throws FileError naming the file when it is missing, truncated, garbage or not a state dict.
 */
export async function openTorchPth(path: string): Promise<TensorSource & { close(): Promise<void> }> {
  let handle: FileHandle;
  let size: number;
  try {
    if (!(await stat(path)).isFile()) throw new Error('not a file');
    handle = await open(path, 'r');
    size = (await handle.stat()).size;
  } catch (error) {
    throw new FileError(path, `cannot read PyTorch weights (${messageOf(error)})`, { cause: error });
  }
  const head = Buffer.alloc(Math.min(size, 512));
  await handle.read(head, 0, head.length, 0);
  if (head.length >= 4 && head.readUInt32LE(0) === 0x04034b50) {
    await handle.close();
    return openZip(path);
  }
  if (head[0] === 0x80) {
    return openLegacy(path, handle, size);
  }
  await handle.close();
  if (head.length >= 262 && head.toString('latin1', 257, 262) === 'ustar') {
    throw new FileError(path, 'is a tar-based PyTorch file (before version 0.1.10); load and save it again with a newer PyTorch');
  }
  throw new FileError(path, 'is not a PyTorch file (neither a zip archive nor a pickle)');
}

/**
 * Reads tensors of a PyTorch state dict file as float32, e.g. `features.0.weight` [64, 3, 3, 3].
 * @param wanted names or a predicate; all tensors when omitted.
 * @throws FileError naming the file (see openTorchPth) or an unknown name.
 */
export async function readTorchPth(path: string, wanted?: Wanted): Promise<Map<string, Tensor>> {
  const source = await openTorchPth(path);
  try {
    return await source.read(selectNames(source.shapes.keys(), wanted));
  } finally {
    await source.close();
  }
}
