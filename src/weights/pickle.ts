/**
 * A small, inert unpickler for the opcodes that PyTorch state dicts use (protocols 2–4, as written
 * by `torch.save`). Nothing is ever executed: globals become `PickleGlobal` markers and the caller
 * decides what calling one (REDUCE / NEWOBJ) produces. Dicts become Maps, tuples and lists arrays,
 * Python 2 byte strings and Python 3 str become strings, bytes become Uint8Array.
 *
 * Written rather than taken from npm because the legacy torch format is several pickles back to
 * back followed by raw storages, so the reader must report where each pickle ends.
 */

export class PickleGlobal {
  constructor(readonly module: string, readonly name: string) {}
  toString(): string {
    return `${this.module}.${this.name}`;
  }
}

export interface PickleHooks {
  /** BINPERSID: resolves a persistent id (torch uses it for tensor storages). */
  persistentLoad?(pid: unknown): unknown;
  /** REDUCE / NEWOBJ: what `callable(...args)` yields. */
  call?(callable: unknown, args: unknown[]): unknown;
}

export class PickleError extends Error {
  override name = 'PickleError';
}

/** Thrown when the bytes end before STOP, so a caller reading a prefix can read more and retry. */
export class PickleTruncatedError extends PickleError {
  override name = 'PickleTruncatedError';
}

const MARK = Symbol('mark');

/** Default for REDUCE of an unknown global: an inert record of the call. */
export interface PickleCall {
  readonly callable: unknown;
  readonly args: unknown[];
  state?: unknown;
}

/**
 * Unpickles one pickle starting at `offset`.
 * @returns the value and the offset just past its STOP opcode.
 * @throws PickleTruncatedError when the data ends early, PickleError for unsupported opcodes.
 */
export function unpickle(bytes: Uint8Array, offset = 0, hooks: PickleHooks = {}): { value: unknown; end: number } {
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const latin1 = new TextDecoder('latin1');
  const utf8 = new TextDecoder('utf-8');
  let pos = offset;
  let stack: unknown[] = [];
  const marks: unknown[][] = [];
  const memo = new Map<number, unknown>();

  const need = (n: number): number => {
    if (pos + n > bytes.byteLength) throw new PickleTruncatedError(`pickle data ends at byte ${bytes.byteLength} inside an opcode`);
    const at = pos;
    pos += n;
    return at;
  };
  const u8 = (): number => bytes[need(1)];
  const u16 = (): number => view.getUint16(need(2), true);
  const u32 = (): number => view.getUint32(need(4), true);
  const u64 = (): number => Number(view.getBigUint64(need(8), true));
  const take = (n: number): Uint8Array => bytes.subarray(need(n), pos);
  const line = (): string => {
    const end = bytes.indexOf(0x0a, pos);
    if (end < 0) throw new PickleTruncatedError('pickle data ends inside a GLOBAL');
    const text = latin1.decode(bytes.subarray(pos, end));
    pos = end + 1;
    return text;
  };
  const pop = (): unknown => {
    if (stack.length === 0) throw new PickleError(`stack underflow at byte ${pos - 1}`);
    return stack.pop();
  };
  const top = (): unknown => {
    if (stack.length === 0) throw new PickleError(`empty stack at byte ${pos - 1}`);
    return stack[stack.length - 1];
  };
  const popMark = (): unknown[] => {
    const items = stack;
    const previous = marks.pop();
    if (!previous) throw new PickleError(`no MARK before byte ${pos - 1}`);
    stack = previous;
    return items;
  };
  const call = (callable: unknown, args: unknown[]): unknown => (hooks.call ? hooks.call(callable, args) : ({ callable, args } satisfies PickleCall));
  const long = (data: Uint8Array): number | bigint => {
    if (data.length === 0) return 0;
    let value = 0n;
    for (let i = data.length - 1; i >= 0; i--) value = (value << 8n) | BigInt(data[i]);
    if (data[data.length - 1] & 0x80) value -= 1n << BigInt(data.length * 8);
    return value >= BigInt(Number.MIN_SAFE_INTEGER) && value <= BigInt(Number.MAX_SAFE_INTEGER) ? Number(value) : value;
  };
  const setItems = (dict: unknown, items: unknown[]): void => {
    if (!(dict instanceof Map)) throw new PickleError(`SETITEMS on a non-dict at byte ${pos - 1}`);
    for (let i = 0; i + 1 < items.length; i += 2) dict.set(items[i], items[i + 1]);
  };
  const append = (list: unknown, items: unknown[]): void => {
    if (!Array.isArray(list)) throw new PickleError(`APPENDS on a non-list at byte ${pos - 1}`);
    list.push(...items);
  };

  for (;;) {
    const op = u8();
    switch (op) {
      case 0x80: u8(); break; // PROTO
      case 0x95: u64(); break; // FRAME: framing is only a hint for buffered readers
      case 0x2e: { // STOP
        if (stack.length !== 1 || marks.length !== 0) throw new PickleError('malformed pickle: STOP with an unbalanced stack');
        return { value: stack[0], end: pos };
      }
      case 0x28: marks.push(stack); stack = []; break; // MARK
      case 0x30: pop(); break; // POP
      case 0x31: popMark(); break; // POP_MARK
      case 0x32: stack.push(top()); break; // DUP
      case 0x4e: stack.push(null); break; // NONE
      case 0x88: stack.push(true); break; // NEWTRUE
      case 0x89: stack.push(false); break; // NEWFALSE
      case 0x4a: stack.push(view.getInt32(need(4), true)); break; // BININT
      case 0x4b: stack.push(u8()); break; // BININT1
      case 0x4d: stack.push(u16()); break; // BININT2
      case 0x8a: stack.push(long(take(u8()))); break; // LONG1
      case 0x8b: stack.push(long(take(u32()))); break; // LONG4
      case 0x47: stack.push(view.getFloat64(need(8), false)); break; // BINFLOAT (big-endian)
      case 0x58: stack.push(utf8.decode(take(u32()))); break; // BINUNICODE
      case 0x8c: stack.push(utf8.decode(take(u8()))); break; // SHORT_BINUNICODE
      case 0x8d: stack.push(utf8.decode(take(u64()))); break; // BINUNICODE8
      case 0x55: stack.push(latin1.decode(take(u8()))); break; // SHORT_BINSTRING (Python 2 str)
      case 0x54: stack.push(latin1.decode(take(u32()))); break; // BINSTRING
      case 0x43: stack.push(take(u8()).slice()); break; // SHORT_BINBYTES
      case 0x42: stack.push(take(u32()).slice()); break; // BINBYTES
      case 0x29: stack.push([]); break; // EMPTY_TUPLE
      case 0x74: { const items = popMark(); stack.push(items); break; } // TUPLE (pop before naming the restored stack)
      case 0x85: stack.push([pop()]); break; // TUPLE1
      case 0x86: { const b = pop(); stack.push([pop(), b]); break; } // TUPLE2
      case 0x87: { const c = pop(); const b = pop(); stack.push([pop(), b, c]); break; } // TUPLE3
      case 0x5d: stack.push([]); break; // EMPTY_LIST
      case 0x6c: { const items = popMark(); stack.push(items); break; } // LIST
      case 0x61: { const item = pop(); append(top(), [item]); break; } // APPEND
      case 0x65: { const items = popMark(); append(top(), items); break; } // APPENDS
      case 0x7d: stack.push(new Map()); break; // EMPTY_DICT
      case 0x64: { const items = popMark(); const dict = new Map(); setItems(dict, items); stack.push(dict); break; } // DICT
      case 0x73: { const value = pop(); const key = pop(); setItems(top(), [key, value]); break; } // SETITEM
      case 0x75: { const items = popMark(); setItems(top(), items); break; } // SETITEMS
      case 0x8f: stack.push(new Set()); break; // EMPTY_SET
      case 0x90: { const items = popMark(); const set = top(); if (set instanceof Set) for (const i of items) set.add(i); break; } // ADDITEMS
      case 0x91: { const items = popMark(); stack.push(new Set(items)); break; } // FROZENSET
      case 0x63: { const module = line(); stack.push(new PickleGlobal(module, line())); break; } // GLOBAL
      case 0x93: { const name = pop(); stack.push(new PickleGlobal(String(pop()), String(name))); break; } // STACK_GLOBAL
      case 0x52: { const args = pop(); stack.push(call(pop(), Array.isArray(args) ? args : [args])); break; } // REDUCE
      case 0x81: { const args = pop(); stack.push(call(pop(), Array.isArray(args) ? args : [args])); break; } // NEWOBJ
      case 0x62: { // BUILD: records the state on our inert objects; Maps (OrderedDict._metadata) ignore it
        const state = pop();
        const obj = top();
        if (obj !== null && typeof obj === 'object' && !(obj instanceof Map) && 'args' in obj) (obj as PickleCall).state = state;
        break;
      }
      case 0x51: { // BINPERSID
        const pid = pop();
        if (!hooks.persistentLoad) throw new PickleError('pickle refers to external data (persistent id) but no loader was given');
        stack.push(hooks.persistentLoad(pid));
        break;
      }
      case 0x71: memo.set(u8(), top()); break; // BINPUT
      case 0x72: memo.set(u32(), top()); break; // LONG_BINPUT
      case 0x94: memo.set(memo.size, top()); break; // MEMOIZE
      case 0x68: case 0x6a: { // BINGET, LONG_BINGET
        const key = op === 0x68 ? u8() : u32();
        if (!memo.has(key)) throw new PickleError(`memo key ${key} used before it was set`);
        stack.push(memo.get(key));
        break;
      }
      default:
        throw new PickleError(`unsupported pickle opcode 0x${op.toString(16).padStart(2, '0')} at byte ${pos - 1}`);
    }
  }
}
