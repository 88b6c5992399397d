/**
 * Writes PyTorch state-dict files the way `torch.save` lays them out, from bytes built here, so
 * the .pth reader is tested without Python: a pickle (protocol 2) of an OrderedDict of
 * `_rebuild_tensor_v2(storage, offset, size, stride, False, OrderedDict())` calls, stored either in
 * a zip archive (PyTorch ≥ 1.6) or in the legacy stream of pickles followed by raw storages.
 */

export interface FixtureTensor {
  readonly name: string;
  /** Storage contents (float32 unless `dtype` says otherwise). */
  readonly storage: Float32Array | Uint16Array;
  readonly shape: readonly number[];
  /** Row-major when omitted. */
  readonly stride?: readonly number[];
  readonly offset?: number;
  readonly dtype?: 'FloatStorage' | 'HalfStorage';
}

/** A minimal pickle byte writer (only the opcodes torch.save emits). */
class Pickler {
  constructor(private readonly py2 = false) {}
  private readonly out: number[] = [];
  private memo = 0;
  private readonly globals = new Map<string, number>();

  bytes(): Uint8Array {
    return Uint8Array.from(this.out);
  }
  op(...bytes: number[]): this {
    this.out.push(...bytes);
    return this;
  }
  proto(): this {
    return this.op(0x80, 2);
  }
  mark(): this {
    return this.op(0x28);
  }
  int(n: number): this {
    if (n >= 0 && n < 256) return this.op(0x4b, n);
    if (n >= 0 && n < 65536) return this.op(0x4d, n & 0xff, n >> 8);
    const b = Buffer.alloc(4);
    b.writeInt32LE(n);
    return this.op(0x4a, ...b);
  }
  long1(value: bigint): this {
    const bytes: number[] = [];
    for (let v = value; v > 0n; v >>= 8n) bytes.push(Number(v & 0xffn));
    if (bytes[bytes.length - 1] & 0x80) bytes.push(0);
    return this.op(0x8a, bytes.length, ...bytes);
  }
  /** Python 3 str (BINUNICODE), or a Python 2 byte string (SHORT_BINSTRING) when `py2`. */
  str(s: string): this {
    if (this.py2 && s.length < 256) return this.op(0x55, s.length, ...Buffer.from(s, 'latin1'));
    const b = Buffer.from(s, 'utf8');
    const n = Buffer.alloc(4);
    n.writeUInt32LE(b.length);
    return this.op(0x58, ...n, ...b);
  }
  /** A GLOBAL, memoised (BINPUT) on first use and fetched (BINGET) after, as pickle does. */
  global(module: string, name: string): this {
    const key = `${module}.${name}`;
    const memo = this.globals.get(key);
    if (memo !== undefined) return this.op(0x68, memo);
    this.op(0x63, ...Buffer.from(`${module}\n${name}\n`, 'latin1'));
    this.globals.set(key, this.memo);
    return this.op(0x71, this.memo++);
  }
  tuple(items: readonly number[]): this {
    if (items.length === 0) return this.op(0x29);
    this.mark();
    for (const i of items) this.int(i);
    return this.op(0x74);
  }
  orderedDict(): this {
    return this.global('collections', 'OrderedDict').op(0x29, 0x52);
  }
  stop(): this {
    return this.op(0x2e);
  }
}

const rowMajor = (shape: readonly number[]): number[] => {
  const stride: number[] = [];
  for (let i = shape.length - 1, s = 1; i >= 0; s *= shape[i], i--) stride[i] = s;
  return stride;
};

/**
 * The state-dict pickle; `legacy` adds the view-metadata slot legacy persistent ids carry;
 * `py2` writes what PyTorch 0.1–0.3 under Python 2 did (torchvision's 2017 VGG files): byte
 * strings and `_rebuild_tensor(storage, offset, size, stride)`.
 */
function stateDictPickle(tensors: readonly FixtureTensor[], legacy: boolean, py2 = false): Uint8Array {
  const p = new Pickler(py2).proto().orderedDict().mark();
  tensors.forEach((t, key) => {
    p.str(t.name).global('torch._utils', py2 ? '_rebuild_tensor' : '_rebuild_tensor_v2').mark();
    p.mark().str('storage').global('torch', t.dtype ?? 'FloatStorage').str(String(key)).str('cpu').int(t.storage.length);
    if (legacy) p.op(0x4e);
    p.op(0x74, 0x51); // TUPLE, BINPERSID
    p.int(t.offset ?? 0).tuple(t.shape).tuple(t.stride ?? rowMajor(t.shape));
    if (!py2) p.op(0x89).orderedDict();
    p.op(0x74, 0x52); // TUPLE, REDUCE
  });
  return p.op(0x75).stop().bytes(); // SETITEMS
}

const storageBytes = (t: FixtureTensor): Uint8Array => new Uint8Array(t.storage.buffer, t.storage.byteOffset, t.storage.byteLength);

const CRC_TABLE = Array.from({ length: 256 }, (_, n) => {
  let c = n;
  for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
  return c >>> 0;
});

function crc32(bytes: Uint8Array): number {
  let c = 0xffffffff;
  for (const b of bytes) c = CRC_TABLE[(c ^ b) & 0xff] ^ (c >>> 8);
  return (c ^ 0xffffffff) >>> 0;
}

/** A zip archive of stored (uncompressed) entries, as PyTorch writes. */
export function zipStore(entries: readonly [string, Uint8Array][]): Uint8Array {
  const parts: Buffer[] = [];
  const central: Buffer[] = [];
  let offset = 0;
  for (const [name, data] of entries) {
    const nameBytes = Buffer.from(name, 'utf8');
    const crc = crc32(data);
    const local = Buffer.alloc(30);
    local.writeUInt32LE(0x04034b50, 0);
    local.writeUInt16LE(20, 4);
    local.writeUInt16LE(0x21, 12); // 1980-01-01
    local.writeUInt32LE(crc, 14);
    local.writeUInt32LE(data.length, 18);
    local.writeUInt32LE(data.length, 22);
    local.writeUInt16LE(nameBytes.length, 26);
    const dir = Buffer.alloc(46);
    dir.writeUInt32LE(0x02014b50, 0);
    dir.writeUInt16LE(20, 4);
    dir.writeUInt16LE(20, 6);
    dir.writeUInt16LE(0x21, 14);
    dir.writeUInt32LE(crc, 16);
    dir.writeUInt32LE(data.length, 20);
    dir.writeUInt32LE(data.length, 24);
    dir.writeUInt16LE(nameBytes.length, 28);
    dir.writeUInt32LE(offset, 42);
    parts.push(local, nameBytes, Buffer.from(data));
    central.push(dir, nameBytes);
    offset += 30 + nameBytes.length + data.length;
  }
  const centralBytes = Buffer.concat(central);
  const end = Buffer.alloc(22);
  end.writeUInt32LE(0x06054b50, 0);
  end.writeUInt16LE(entries.length, 8);
  end.writeUInt16LE(entries.length, 10);
  end.writeUInt32LE(centralBytes.length, 12);
  end.writeUInt32LE(offset, 16);
  return Buffer.concat([...parts, centralBytes, end]);
}

/** A PyTorch ≥ 1.6 zip-format .pth of the tensors (archive folder `archive`). */
export function torchZip(tensors: readonly FixtureTensor[]): Uint8Array {
  return zipStore([
    ['archive/data.pkl', stateDictPickle(tensors, false)],
    ['archive/byteorder', Buffer.from('little')],
    ...tensors.map((t, key): [string, Uint8Array] => [`archive/data/${key}`, storageBytes(t)]),
    ['archive/version', Buffer.from('3\n')],
  ]);
}

/** A legacy (PyTorch < 1.6) .pth of the tensors: magic, protocol, sys info, state dict, keys, storages. */
export function torchLegacy(tensors: readonly FixtureTensor[], options: { py2?: boolean } = {}): Uint8Array {
  const magic = new Pickler().proto().long1(0x1950a86a20f9469cfc6cn).stop().bytes();
  const protocol = new Pickler().proto().int(1001).stop().bytes();
  const info = new Pickler().proto().op(0x7d).mark().str('protocol_version').int(1001).str('little_endian').op(0x88).op(0x75).stop().bytes();
  const keys = new Pickler(options.py2).proto().op(0x5d).mark();
  tensors.forEach((_, key) => keys.str(String(key)));
  const storages = tensors.flatMap((t) => {
    const count = Buffer.alloc(8);
    count.writeBigInt64LE(BigInt(t.storage.length));
    return [count, Buffer.from(storageBytes(t))];
  });
  return Buffer.concat([magic, protocol, info, stateDictPickle(tensors, true, options.py2), keys.op(0x65).stop().bytes(), ...storages]);
}
