/**
 * Shapes whose dimensions are numbers or symbols. A symbol (e.g. 'H') is a size fixed only when
 * the model runs; it is exported as an ONNX `dim_param` so one model file serves every image size.
 * Arithmetic on symbols yields readable expressions ('ceil(H/2)') so shapes stay checkable.
 */
export type Dim = number | string;
export type Shape = readonly Dim[];

/** A dense float32 tensor with a concrete shape (row-major). */
export interface Tensor {
  readonly data: Float32Array;
  readonly shape: readonly number[];
}

export function sizeOf(shape: readonly number[]): number {
  let n = 1;
  for (const d of shape) n *= d;
  return n;
}

export function isConcrete(shape: Shape): shape is readonly number[] {
  return shape.every((d) => typeof d === 'number');
}

export function formatShape(shape: Shape): string {
  return `[${shape.join(', ')}]`;
}

export function sameShape(a: Shape, b: Shape): boolean {
  return a.length === b.length && a.every((d, i) => d === b[i]);
}

/** Parenthesises a symbolic term unless it is one word or one call like 'ceil(H/2)'. */
const wrap = (d: Dim): string => (typeof d === 'number' || /^\w+$/.test(d) || /^\w+\([^()]*(\([^()]*\))*[^()]*\)$/.test(d) ? String(d) : `(${d})`);

/**
 * d + n. Symbolic sums keep one constant term ('H+8' − 9 → 'H-1'), so shapes that are equal
 * also read equal and broadcast against each other.
 */
export function addDim(d: Dim, n: number): Dim {
  if (typeof d === 'number') return d + n;
  const sum = /^(.*[^+-])([+-]\d+)$/.exec(d);
  const base = sum ? sum[1] : d;
  const offset = (sum ? Number(sum[2]) : 0) + n;
  return offset === 0 ? base : `${base}${offset > 0 ? '+' : '-'}${Math.abs(offset)}`;
}

export function mulDim(d: Dim, n: number): Dim {
  if (n === 1) return d;
  return typeof d === 'number' ? d * n : `${wrap(d)}*${n}`;
}

export function ceilDivDim(d: Dim, n: number): Dim {
  if (n === 1) return d;
  return typeof d === 'number' ? Math.ceil(d / n) : `ceil(${wrap(d)}/${n})`;
}

export function floorDivDim(d: Dim, n: number): Dim {
  if (n === 1) return d;
  return typeof d === 'number' ? Math.floor(d / n) : `floor(${wrap(d)}/${n})`;
}

/** NumPy-style broadcast of two shapes; symbols broadcast only against 1 or the same symbol. */
export function broadcastShapes(a: Shape, b: Shape): Shape | null {
  const rank = Math.max(a.length, b.length);
  const out: Dim[] = [];
  for (let i = 0; i < rank; i++) {
    const da = a[a.length - rank + i] ?? 1;
    const db = b[b.length - rank + i] ?? 1;
    if (da === db || db === 1) out.push(da);
    else if (da === 1) out.push(db);
    else return null;
  }
  return out;
}

/** True when `d` is known to be a multiple of `n` (numbers, or symbols written as `…*k` with n | k). */
export function isMultipleOf(d: Dim, n: number): boolean {
  if (typeof d === 'number') return d % n === 0;
  const factor = /\*(\d+)$/.exec(d);
  return factor !== null && Number(factor[1]) % n === 0;
}
