/**
 * An independent float64 interpreter of pastiche graphs, the reference for finite differences.
 * It reads only the graph's structure (nodes in order, each op's type and attributes, the data of
 * parameters and constants) and evaluates every op with plain loops over Float64Array, written
 * from the ops' documented semantics (TensorFlow SAME padding, ONNX ConvTranspose pads, ONNX
 * DepthToSpace 'CRD' and SpaceToDepth orders, NumPy broadcasting) — no pastiche code runs.
 */
import type { Graph, Value } from '../../src/graph/index.js';

/** A dense float64 tensor, row-major. */
export interface Tensor64 {
  readonly data: Float64Array;
  readonly shape: readonly number[];
}

/** Values by name: every graph input, and optionally replacements for parameters or constants. */
export type Feeds64 = Readonly<Record<string, { readonly data: ArrayLike<number>; readonly shape: readonly number[] }>>;

const sizeOf = (shape: readonly number[]): number => shape.reduce((a, b) => a * b, 1);

function stridesOf(shape: readonly number[]): number[] {
  const strides = new Array<number>(shape.length);
  let s = 1;
  for (let i = shape.length - 1; i >= 0; i--) { strides[i] = s; s *= shape[i]; }
  return strides;
}

/** Calls `fn` for every multi-index of `shape` in row-major order (the index array is reused). */
function forEachIndex(shape: readonly number[], fn: (idx: readonly number[], flat: number) => void): void {
  const n = sizeOf(shape);
  const idx = new Array<number>(shape.length).fill(0);
  for (let flat = 0; flat < n; flat++) {
    fn(idx, flat);
    for (let d = shape.length - 1; d >= 0; d--) {
      if (++idx[d] < shape[d]) break;
      idx[d] = 0;
    }
  }
}

/** A tensor of `shape` whose element at each index is `fn(index)`. */
function generate(shape: readonly number[], fn: (idx: readonly number[]) => number): Tensor64 {
  const data = new Float64Array(sizeOf(shape));
  forEachIndex(shape, (idx, flat) => { data[flat] = fn(idx); });
  return { data, shape: [...shape] };
}

function at(t: Tensor64, idx: readonly number[]): number {
  let flat = 0;
  for (let d = 0; d < idx.length; d++) flat = flat * t.shape[d] + idx[d];
  return t.data[flat];
}

function broadcastShape(a: readonly number[], b: readonly number[]): number[] {
  const rank = Math.max(a.length, b.length);
  const out: number[] = [];
  for (let i = 0; i < rank; i++) {
    const da = a[a.length - rank + i] ?? 1;
    const db = b[b.length - rank + i] ?? 1;
    if (da !== db && da !== 1 && db !== 1) throw new RangeError(`eval64: [${a}] and [${b}] do not broadcast`);
    out.push(da === 1 ? db : da);
  }
  return out;
}

/** Reads `t` as if broadcast to `shape`. */
function broadcastReader(t: Tensor64, shape: readonly number[]): (idx: readonly number[]) => number {
  const extra = shape.length - t.shape.length;
  const strides = stridesOf(t.shape);
  return (idx) => {
    let flat = 0;
    for (let d = 0; d < t.shape.length; d++) if (t.shape[d] !== 1) flat += idx[d + extra] * strides[d];
    return t.data[flat];
  };
}

function binary(a: Tensor64, b: Tensor64, f: (x: number, y: number) => number): Tensor64 {
  const shape = broadcastShape(a.shape, b.shape);
  const ra = broadcastReader(a, shape);
  const rb = broadcastReader(b, shape);
  return generate(shape, (idx) => f(ra(idx), rb(idx)));
}

function unary(x: Tensor64, f: (v: number) => number): Tensor64 {
  return { data: x.data.map(f), shape: x.shape };
}

type Pads = readonly [number, number, number, number];

/** TensorFlow SAME: output ceil(n/s), total padding split with the odd pixel at the end. */
function samePads(h: number, w: number, kh: number, kw: number, s: number): Pads {
  const total = (n: number, k: number) => Math.max((Math.ceil(n / s) - 1) * s + k - n, 0);
  const th = total(h, kh);
  const tw = total(w, kw);
  return [Math.floor(th / 2), Math.floor(tw / 2), th - Math.floor(th / 2), tw - Math.floor(tw / 2)];
}

function conv2d(x: Tensor64, w: Tensor64, b: Tensor64 | undefined, attrs: { stride: number; padding: 'same' | Pads }): Tensor64 {
  const [n, c, h, wd] = x.shape;
  const [k, , kh, kw] = w.shape;
  const s = attrs.stride;
  const [t, l, bottom, r] = attrs.padding === 'same' ? samePads(h, wd, kh, kw, s) : attrs.padding;
  const ho = Math.floor((h + t + bottom - kh) / s) + 1;
  const wo = Math.floor((wd + l + r - kw) / s) + 1;
  return generate([n, k, ho, wo], ([ni, ki, oy, ox]) => {
    let sum = b ? b.data[ki] : 0;
    for (let ci = 0; ci < c; ci++) {
      for (let i = 0; i < kh; i++) {
        const iy = oy * s + i - t;
        if (iy < 0 || iy >= h) continue;
        for (let j = 0; j < kw; j++) {
          const ix = ox * s + j - l;
          if (ix < 0 || ix >= wd) continue;
          sum += x.data[((ni * c + ci) * h + iy) * wd + ix] * w.data[((ki * c + ci) * kh + i) * kw + j];
        }
      }
    }
    return sum;
  });
}

/** ONNX ConvTranspose, weights [Cin, Cout, kh, kw]; `pads` are cropped from the full output. */
function convTranspose2d(x: Tensor64, w: Tensor64, b: Tensor64 | undefined, attrs: { stride: number; pads: Pads }): Tensor64 {
  const [n, cin, h, wd] = x.shape;
  const [, cout, kh, kw] = w.shape;
  const s = attrs.stride;
  const [t, l, bottom, r] = attrs.pads;
  const ho = (h - 1) * s + kh - t - bottom;
  const wo = (wd - 1) * s + kw - l - r;
  const y = new Float64Array(n * cout * ho * wo);
  for (let ni = 0; ni < n; ni++) {
    for (let co = 0; co < cout; co++) {
      for (let p = 0; p < ho * wo; p++) y[(ni * cout + co) * ho * wo + p] = b ? b.data[co] : 0;
      for (let ci = 0; ci < cin; ci++) {
        for (let iy = 0; iy < h; iy++) {
          for (let ix = 0; ix < wd; ix++) {
            const v = x.data[((ni * cin + ci) * h + iy) * wd + ix];
            for (let i = 0; i < kh; i++) {
              const oy = iy * s + i - t;
              if (oy < 0 || oy >= ho) continue;
              for (let j = 0; j < kw; j++) {
                const ox = ix * s + j - l;
                if (ox < 0 || ox >= wo) continue;
                y[((ni * cout + co) * ho + oy) * wo + ox] += v * w.data[((ci * cout + co) * kh + i) * kw + j];
              }
            }
          }
        }
      }
    }
  }
  return { data: y, shape: [n, cout, ho, wo] };
}

function instanceNorm(x: Tensor64, scale: Tensor64, bias: Tensor64, epsilon: number): Tensor64 {
  const [n, c, h, w] = x.shape;
  const plane = h * w;
  const y = new Float64Array(x.data.length);
  for (let p = 0; p < n * c; p++) {
    const ch = p % c;
    let mean = 0;
    for (let i = 0; i < plane; i++) mean += x.data[p * plane + i];
    mean /= plane;
    let variance = 0;
    for (let i = 0; i < plane; i++) variance += (x.data[p * plane + i] - mean) ** 2;
    variance /= plane;
    const inv = 1 / Math.sqrt(variance + epsilon);
    for (let i = 0; i < plane; i++) y[p * plane + i] = scale.data[ch] * (x.data[p * plane + i] - mean) * inv + bias.data[ch];
  }
  return { data: y, shape: x.shape };
}

function pad2d(x: Tensor64, attrs: { pads: Pads; mode: 'constant' | 'reflect' | 'edge'; value?: number }): Tensor64 {
  const [n, c, h, w] = x.shape;
  const [t, l, b, r] = attrs.pads;
  const source = (i: number, size: number): number => {
    if (i >= 0 && i < size) return i;
    if (attrs.mode === 'constant') return -1;
    if (attrs.mode === 'edge') return i < 0 ? 0 : size - 1;
    return i < 0 ? -i : 2 * (size - 1) - i; // reflect: the edge pixel is not repeated
  };
  return generate([n, c, h + t + b, w + l + r], ([ni, ci, y, xx]) => {
    const sy = source(y - t, h);
    const sx = source(xx - l, w);
    return sy < 0 || sx < 0 ? attrs.value ?? 0 : at(x, [ni, ci, sy, sx]);
  });
}

function pool(x: Tensor64, kernel: number, stride: number, kind: 'max' | 'avg'): Tensor64 {
  const [n, c, h, w] = x.shape;
  const ho = Math.floor((h - kernel) / stride) + 1;
  const wo = Math.floor((w - kernel) / stride) + 1;
  return generate([n, c, ho, wo], ([ni, ci, oy, ox]) => {
    let acc = kind === 'max' ? -Infinity : 0;
    for (let i = 0; i < kernel; i++) {
      for (let j = 0; j < kernel; j++) {
        const v = at(x, [ni, ci, oy * stride + i, ox * stride + j]);
        acc = kind === 'max' ? Math.max(acc, v) : acc + v;
      }
    }
    return kind === 'max' ? acc : acc / (kernel * kernel);
  });
}

/** Routes each window's dy to the window's first maximum (row-major), summing overlaps. */
function maxPoolGrad(x: Tensor64, dy: Tensor64, kernel: number, stride: number): Tensor64 {
  const [n, c, h, w] = x.shape;
  const [, , ho, wo] = dy.shape;
  const dx = new Float64Array(x.data.length);
  for (let p = 0; p < n * c; p++) {
    for (let oy = 0; oy < ho; oy++) {
      for (let ox = 0; ox < wo; ox++) {
        let best = -1;
        for (let i = 0; i < kernel; i++) {
          for (let j = 0; j < kernel; j++) {
            const f = p * h * w + (oy * stride + i) * w + ox * stride + j;
            if (best < 0 || x.data[f] > x.data[best]) best = f;
          }
        }
        dx[best] += dy.data[(p * ho + oy) * wo + ox];
      }
    }
  }
  return { data: dx, shape: x.shape };
}

function reduce(x: Tensor64, attrs: { axes: readonly number[]; keepDims: boolean }, mean: boolean): Tensor64 {
  const axes = attrs.axes.length === 0 ? x.shape.map((_, i) => i) : attrs.axes;
  const kept = x.shape.map((d, i) => (axes.includes(i) ? 1 : d));
  const out = new Float64Array(sizeOf(kept));
  const keptStrides = stridesOf(kept);
  forEachIndex(x.shape, (idx, flat) => {
    let o = 0;
    for (let d = 0; d < idx.length; d++) if (!axes.includes(d)) o += idx[d] * keptStrides[d];
    out[o] += x.data[flat];
  });
  const count = sizeOf(x.shape) / out.length;
  if (mean) for (let i = 0; i < out.length; i++) out[i] /= count;
  return { data: out, shape: attrs.keepDims ? kept : x.shape.filter((_, i) => !axes.includes(i)) };
}

function matmul(a: Tensor64, b: Tensor64): Tensor64 {
  const [m, k] = a.shape.slice(-2);
  const n = b.shape[b.shape.length - 1];
  if (b.shape[b.shape.length - 2] !== k) throw new RangeError(`eval64: matmul inner sizes ${k} and ${b.shape[b.shape.length - 2]}`);
  const batch = broadcastShape(a.shape.slice(0, -2), b.shape.slice(0, -2));
  const shape = [...batch, m, n];
  const ra = broadcastReader(a, [...batch, m, k]);
  const rb = broadcastReader(b, [...batch, k, n]);
  return generate(shape, (idx) => {
    const lead = idx.slice(0, -2);
    const [i, j] = idx.slice(-2);
    let sum = 0;
    for (let q = 0; q < k; q++) sum += ra([...lead, i, q]) * rb([...lead, q, j]);
    return sum;
  });
}

function concat(xs: readonly Tensor64[], axis: number): Tensor64 {
  const offsets: number[] = [];
  let total = 0;
  for (const x of xs) { offsets.push(total); total += x.shape[axis]; }
  const shape = xs[0].shape.map((d, i) => (i === axis ? total : d));
  return generate(shape, (idx) => {
    let part = xs.length - 1;
    while (offsets[part] > idx[axis]) part--;
    const local = [...idx];
    local[axis] -= offsets[part];
    return at(xs[part], local);
  });
}

// Each op records its own attribute object; the interpreter reads the fields by name rather than
// importing pastiche's attribute types, so it stays independent of the ops' code.
type Attrs = any;

function evalOp(type: string, xs: readonly Tensor64[], a: Attrs): Tensor64 {
  const [x, y, z] = xs;
  switch (type) {
    case 'conv2d': return conv2d(x, y, z, a);
    case 'convTranspose2d': return convTranspose2d(x, y, z, a);
    case 'instanceNorm': return instanceNorm(x, y, z, a.epsilon);
    case 'add': return binary(x, y, (p, q) => p + q);
    case 'sub': return binary(x, y, (p, q) => p - q);
    case 'mul': return binary(x, y, (p, q) => p * q);
    case 'div': return binary(x, y, (p, q) => p / q);
    case 'neg': return unary(x, (v) => -v);
    case 'relu': return unary(x, (v) => (v > 0 ? v : 0));
    case 'tanh': return unary(x, Math.tanh);
    case 'sigmoid': return unary(x, (v) => 1 / (1 + Math.exp(-v)));
    case 'sqrt': return unary(x, Math.sqrt);
    case 'exp': return unary(x, Math.exp);
    case 'square': return unary(x, (v) => v * v);
    case 'clip': return unary(x, (v) => Math.min(a.max, Math.max(a.min, v)));
    case 'rangeMask': return unary(x, (v) => ((a.exclusiveMin ? v > a.min : v >= a.min) && v <= a.max ? 1 : 0));
    case 'pad2d': return pad2d(x, a);
    case 'crop2d': {
      const [t, l, b, r] = a.crop as Pads;
      const [n, c, h, w] = x.shape;
      return generate([n, c, h - t - b, w - l - r], ([ni, ci, i, j]) => at(x, [ni, ci, i + t, j + l]));
    }
    case 'upsampleNearest': {
      const s = a.scale as number;
      const [n, c, h, w] = x.shape;
      return generate([n, c, h * s, w * s], ([ni, ci, i, j]) => at(x, [ni, ci, Math.floor(i / s), Math.floor(j / s)]));
    }
    case 'depthToSpace': {
      const b = a.blockSize as number;
      const [n, c, h, w] = x.shape;
      return generate([n, c / (b * b), h * b, w * b], ([ni, ci, i, j]) =>
        at(x, [ni, ci * b * b + (i % b) * b + (j % b), Math.floor(i / b), Math.floor(j / b)]));
    }
    case 'spaceToDepth': {
      const b = a.blockSize as number;
      const [n, c, h, w] = x.shape;
      return generate([n, c * b * b, h / b, w / b], ([ni, co, i, j]) => {
        const block = Math.floor(co / c);
        return at(x, [ni, co % c, i * b + Math.floor(block / b), j * b + (block % b)]);
      });
    }
    case 'maxPool2d': return pool(x, a.kernel, a.stride, 'max');
    case 'avgPool2d': return pool(x, a.kernel, a.stride, 'avg');
    case 'maxPool2dGrad': return maxPoolGrad(x, y, a.kernel, a.stride);
    case 'reduceSum': return reduce(x, a, false);
    case 'reduceMean': return reduce(x, a, true);
    case 'reshape': return { data: x.data, shape: [...(a.shape as number[])] };
    case 'transpose': {
      const perm = a.perm as number[];
      return generate(perm.map((p) => x.shape[p]), (idx) => {
        const src = new Array<number>(perm.length);
        perm.forEach((p, i) => { src[p] = idx[i]; });
        return at(x, src);
      });
    }
    case 'flip': {
      const axes = a.axes as number[];
      return generate(x.shape, (idx) => at(x, idx.map((v, d) => (axes.includes(d) ? x.shape[d] - 1 - v : v))));
    }
    case 'broadcastTo': {
      const shape = a.shape as number[];
      return generate(shape, broadcastReader(x, shape));
    }
    case 'concat': return concat(xs, a.axis);
    case 'slice': {
      const { axis, start, end, step } = a as { axis: number; start: number; end: number; step: number };
      const shape = x.shape.map((d, i) => (i === axis ? Math.ceil((end - start) / step) : d));
      return generate(shape, (idx) => at(x, idx.map((v, d) => (d === axis ? start + v * step : v))));
    }
    case 'padAxis': {
      const { axis, before, after } = a as { axis: number; before: number; after: number };
      const shape = x.shape.map((d, i) => (i === axis ? d + before + after : d));
      return generate(shape, (idx) => {
        const i = idx[axis] - before;
        return i < 0 || i >= x.shape[axis] ? 0 : at(x, idx.map((v, d) => (d === axis ? i : v)));
      });
    }
    case 'matmul': return matmul(x, y);
    default: throw new Error(`eval64: no float64 evaluator for op '${type}'`);
  }
}

/**
 * Evaluates `targets` in float64. Graph inputs come from `feeds` (by name); parameters and
 * constants from their stored data unless `feeds` names them too. Only the nodes the targets
 * depend on are evaluated.
 */
export function evaluate64(graph: Graph, targets: readonly Value[], feeds: Feeds64 = {}): Tensor64[] {
  const needed = new Set<Value>();
  const visit = (v: Value): void => {
    if (needed.has(v)) return;
    needed.add(v);
    v.node?.inputs.forEach(visit);
  };
  targets.forEach(visit);

  const values = new Map<Value, Tensor64>();
  const leaf = (v: Value): Tensor64 => {
    const fed = feeds[v.name];
    const source = fed ?? v.tensor;
    if (!source) throw new Error(`eval64: no value for input '${v.name}'`);
    const shape = [...source.shape];
    if (fed && v.shape.some((d, i) => typeof d === 'number' && d !== shape[i])) {
      throw new RangeError(`eval64: '${v.name}' fed with shape [${shape}] but declared [${v.shape.join(', ')}]`);
    }
    return { data: Float64Array.from(source.data), shape };
  };
  for (const v of [...graph.inputs, ...graph.params, ...graph.constants]) if (needed.has(v)) values.set(v, leaf(v));
  for (const node of graph.nodes) {
    if (!needed.has(node.output)) continue;
    const inputs = node.inputs.map((v) => {
      const t = values.get(v);
      if (!t) throw new Error(`eval64: '${v.name}' is used before it is computed`);
      return t;
    });
    values.set(node.output, evalOp(node.op.type, inputs, node.attrs));
  }
  return targets.map((t) => values.get(t)!);
}
