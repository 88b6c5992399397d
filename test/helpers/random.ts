/**
 * Seeded pseudo-random data for tests (mulberry32): the same seed gives the same numbers on every
 * machine, so a failing case can be replayed exactly.
 */

/** A generator of uniform numbers in [0, 1) from a 32-bit seed. */
export function rng(seed: number): () => number {
  let state = seed >>> 0;
  return () => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** `size` uniform float32 values in [lo, hi). */
export function randomData(size: number, seed: number, lo = -1, hi = 1): Float32Array {
  const next = rng(seed);
  const data = new Float32Array(size);
  for (let i = 0; i < size; i++) data[i] = lo + (hi - lo) * next();
  return data;
}

/** A dense tensor of uniform values in [lo, hi), shaped for `Graph.param` / `Graph.constant`. */
export function randomTensor(shape: readonly number[], seed: number, lo = -1, hi = 1): { data: Float32Array; shape: number[] } {
  const size = shape.reduce((a, b) => a * b, 1);
  return { data: randomData(size, seed, lo, hi), shape: [...shape] };
}
