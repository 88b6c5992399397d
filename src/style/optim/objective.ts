/** What the optimisers minimise, and small vector helpers they share. */

/** Loss and gradient at a point. The optimiser never mutates the returned gradient. */
export type Objective = (x: Float32Array) => Promise<{ loss: number; grad: Float32Array }>;

export interface OptimizerStep {
  readonly loss: number;
  readonly evaluations: number;
  readonly converged: boolean;
}

/** An optimiser that improves its point `x` one iteration per `step()`. */
export interface Optimizer {
  readonly x: Float32Array;
  step(): Promise<OptimizerStep>;
}

export function dot(a: Float32Array, b: Float32Array): number {
  let s = 0;
  for (let i = 0; i < a.length; i++) s += a[i] * b[i];
  return s;
}

export function maxAbs(a: Float32Array): number {
  let m = 0;
  for (let i = 0; i < a.length; i++) {
    const v = Math.abs(a[i]);
    if (v > m) m = v;
  }
  return m;
}
