/**
 * Seeded random streams for everything that must repeat exactly (photo order, training
 * perturbations, synthetic clips): splitmix32 started from murmur3-mixed seeds, so a stream is a
 * function of its integer seeds alone and a resumed run draws the same numbers.
 */

/** murmur3's 32-bit finaliser: every input bit reaches every output bit. */
export function mix32(x: number): number {
  x = Math.imul(x ^ (x >>> 16), 0x85ebca6b);
  x = Math.imul(x ^ (x >>> 13), 0xc2b2ae35);
  return (x ^ (x >>> 16)) >>> 0;
}

/** A splitmix32 stream of uint32s from `state`. */
export function splitmix32(state: number): () => number {
  return () => {
    state = (state + 0x9e3779b9) | 0;
    let z = state;
    z = Math.imul(z ^ (z >>> 16), 0x21f0aaad);
    z = Math.imul(z ^ (z >>> 15), 0x735a2d97);
    return (z ^ (z >>> 15)) >>> 0;
  };
}

/** Uniform numbers in [0, 1) and standard normal ones (Box-Muller) from the stream of (seed, salt). */
export function seededStream(seed: number, salt = 0): { uniform: () => number; gaussian: () => number } {
  const next = splitmix32(mix32(seed ^ mix32((salt + 0x9e3779b9) >>> 0)));
  const uniform = (): number => next() / 0x1_0000_0000;
  let spare: number | undefined;
  const gaussian = (): number => {
    if (spare !== undefined) {
      const s = spare;
      spare = undefined;
      return s;
    }
    const radius = Math.sqrt(-2 * Math.log(1 - uniform()));
    const angle = 2 * Math.PI * uniform();
    spare = radius * Math.sin(angle);
    return radius * Math.cos(angle);
  };
  return { uniform, gaussian };
}
