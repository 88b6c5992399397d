/** Adam (Kingma & Ba 2015): one objective evaluation per iteration, bias-corrected moments. */
import type { Objective, OptimizerStep } from './objective.js';

export interface AdamOptions {
  /** Step size in the image's units, 0..255 (default 10: a few grey levels per step). */
  readonly learningRate?: number;
  readonly beta1?: number;
  readonly beta2?: number;
  readonly epsilon?: number;
}

export class Adam {
  /** First and second moment estimates (checkpointed by training to resume exactly). */
  readonly m: Float32Array;
  readonly v: Float32Array;
  private readonly lr: number;
  private readonly beta1: number;
  private readonly beta2: number;
  private readonly epsilon: number;
  /** Steps taken so far: the bias corrections depend on it. */
  iteration = 0;
  evaluations = 0;

  constructor(private readonly objective: Objective, readonly x: Float32Array, options: AdamOptions = {}) {
    this.m = new Float32Array(x.length);
    this.v = new Float32Array(x.length);
    this.lr = options.learningRate ?? 10;
    this.beta1 = options.beta1 ?? 0.9;
    this.beta2 = options.beta2 ?? 0.999;
    this.epsilon = options.epsilon ?? 1e-8;
  }

  /** Continues from saved moments and step count (same length as `x`). */
  restore(state: { m: Float32Array; v: Float32Array; iteration: number }): void {
    if (state.m.length !== this.m.length || state.v.length !== this.v.length) {
      throw new RangeError(`Adam: saved moments have ${state.m.length} values but the parameters ${this.m.length}`);
    }
    this.m.set(state.m);
    this.v.set(state.v);
    this.iteration = state.iteration;
  }

  /** Evaluates at the current point and takes one step; returns the loss before the step. */
  async step(): Promise<OptimizerStep> {
    const { loss, grad } = await this.objective(this.x);
    this.evaluations++;
    this.iteration++;
    const { m, v, x, beta1, beta2 } = this;
    const c1 = 1 - beta1 ** this.iteration;
    const c2 = 1 - beta2 ** this.iteration;
    for (let i = 0; i < x.length; i++) {
      const g = grad[i];
      m[i] = beta1 * m[i] + (1 - beta1) * g;
      v[i] = beta2 * v[i] + (1 - beta2) * g * g;
      x[i] -= (this.lr * (m[i] / c1)) / (Math.sqrt(v[i] / c2) + this.epsilon);
    }
    return { loss, evaluations: this.evaluations, converged: false };
  }
}
