/**
 * L-BFGS with a strong-Wolfe line search, after PyTorch's `torch.optim.LBFGS` (itself after
 * Schmidt's minFunc): two-loop recursion over the last `historySize` curvature pairs, the first
 * step scaled by 1/|g|₁, bracketing and cubic-interpolation zoom for the step length.
 *
 * Vectors are Float32Array (a 2048² image is 12.6 M values, and the history holds 2·m of them);
 * dot products accumulate in float64.
 */
import { dot, maxAbs, type Objective, type OptimizerStep } from './objective.js';

export interface LbfgsOptions {
  /** Curvature pairs kept (default 20). */
  readonly historySize?: number;
  /** Step length multiplier (default 1). */
  readonly learningRate?: number;
  /** Stop when max|g| falls below this (default 1e-7). */
  readonly toleranceGrad?: number;
  /** Stop when the loss or step changes less than this (default 1e-9). */
  readonly toleranceChange?: number;
  /** Line search evaluations per iteration at most (default 25). */
  readonly maxLineSearch?: number;
}

function axpy(a: number, x: Float32Array, y: Float32Array): void {
  for (let i = 0; i < y.length; i++) y[i] += a * x[i];
}

function cubicInterpolate(x1: number, f1: number, g1: number, x2: number, f2: number, g2: number, bounds?: [number, number]): number {
  const [lo, hi] = bounds ?? (x1 <= x2 ? [x1, x2] : [x2, x1]);
  const d1 = g1 + g2 - (3 * (f1 - f2)) / (x1 - x2);
  const d2Square = d1 * d1 - g1 * g2;
  if (d2Square >= 0) {
    const d2 = Math.sqrt(d2Square);
    const minPos = x1 <= x2
      ? x2 - (x2 - x1) * ((g2 + d2 - d1) / (g2 - g1 + 2 * d2))
      : x1 - (x1 - x2) * ((g1 + d2 - d1) / (g1 - g2 + 2 * d2));
    return Math.min(Math.max(minPos, lo), hi);
  }
  return (lo + hi) / 2;
}

/**
 * Minimises `objective` starting from `x` (updated in place), one iteration per `step()`.
 * Each iteration evaluates the objective once or more (the line search).
 */
export class Lbfgs {
  private readonly historySize: number;
  private readonly learningRate: number;
  private readonly toleranceGrad: number;
  private readonly toleranceChange: number;
  private readonly maxLineSearch: number;
  private readonly dirs: Float32Array[] = []; // y = g_{k+1} − g_k
  private readonly steps: Float32Array[] = []; // s = x_{k+1} − x_k
  private readonly rho: number[] = [];
  private hDiag = 1;
  private loss = Number.NaN;
  private g: Float32Array | null = null;
  private d: Float32Array | null = null;
  private t = 0;
  private iteration = 0;
  /** Objective evaluations so far. */
  evaluations = 0;
  converged = false;

  constructor(private readonly objective: Objective, readonly x: Float32Array, options: LbfgsOptions = {}) {
    this.historySize = options.historySize ?? 20;
    this.learningRate = options.learningRate ?? 1;
    this.toleranceGrad = options.toleranceGrad ?? 1e-7;
    this.toleranceChange = options.toleranceChange ?? 1e-9;
    this.maxLineSearch = options.maxLineSearch ?? 25;
  }

  private async evaluate(x: Float32Array): Promise<{ loss: number; grad: Float32Array }> {
    this.evaluations++;
    return this.objective(x);
  }

  /** One L-BFGS iteration; returns the loss at the new point. */
  async step(): Promise<OptimizerStep> {
    const x = this.x;
    if (this.g === null) {
      const first = await this.evaluate(x);
      this.loss = first.loss;
      this.g = first.grad;
    }
    let g = this.g;
    if (maxAbs(g) <= this.toleranceGrad) {
      this.converged = true;
      return { loss: this.loss, evaluations: this.evaluations, converged: true };
    }
    this.iteration++;
    let d: Float32Array;
    if (this.iteration === 1) {
      d = g.map((v) => -v);
    } else {
      const y = new Float32Array(g.length);
      const prevG = this.prevG!;
      for (let i = 0; i < y.length; i++) y[i] = g[i] - prevG[i];
      const s = this.d!.map((v) => v * this.t);
      const ys = dot(y, s);
      if (ys > 1e-10) {
        if (this.dirs.length === this.historySize) {
          this.dirs.shift();
          this.steps.shift();
          this.rho.shift();
        }
        this.dirs.push(y);
        this.steps.push(s);
        this.rho.push(1 / ys);
        this.hDiag = ys / dot(y, y);
      }
      // Two-loop recursion: d = −H·g.
      const k = this.dirs.length;
      const alpha = new Array<number>(k);
      const q = g.map((v) => -v);
      for (let i = k - 1; i >= 0; i--) {
        alpha[i] = dot(this.steps[i], q) * this.rho[i];
        axpy(-alpha[i], this.dirs[i], q);
      }
      for (let i = 0; i < q.length; i++) q[i] *= this.hDiag;
      for (let i = 0; i < k; i++) {
        const beta = dot(this.dirs[i], q) * this.rho[i];
        axpy(alpha[i] - beta, this.steps[i], q);
      }
      d = q;
    }
    this.prevG = g.slice();
    const prevLoss = this.loss;
    let gSum = 0;
    for (let i = 0; i < g.length; i++) gSum += Math.abs(g[i]);
    let t = this.iteration === 1 ? Math.min(1, 1 / gSum) * this.learningRate : this.learningRate;
    const gtd = dot(g, d);
    if (gtd > -this.toleranceChange) {
      this.converged = true;
      return { loss: this.loss, evaluations: this.evaluations, converged: true };
    }
    const search = await this.strongWolfe(t, d, this.loss, g, gtd);
    t = search.t;
    axpy(t, d, x);
    this.loss = search.loss;
    g = search.grad;
    this.g = g;
    this.d = d;
    this.t = t;
    if (maxAbs(g) <= this.toleranceGrad || maxAbs(d) * Math.abs(t) <= this.toleranceChange || Math.abs(this.loss - prevLoss) < this.toleranceChange) {
      this.converged = true;
    }
    return { loss: this.loss, evaluations: this.evaluations, converged: this.converged };
  }

  private prevG: Float32Array | null = null;

  /** Finds t along d satisfying the strong Wolfe conditions (c1 = 1e-4, c2 = 0.9). */
  private async strongWolfe(t0: number, d: Float32Array, f: number, g: Float32Array, gtd: number): Promise<{ t: number; loss: number; grad: Float32Array }> {
    const c1 = 1e-4;
    const c2 = 0.9;
    const dNorm = maxAbs(d);
    const at = (t: number): Float32Array => {
      const point = this.x.slice();
      axpy(t, d, point);
      return point;
    };
    let t = t0;
    let { loss: fNew, grad: gNew } = await this.evaluate(at(t));
    let gtdNew = dot(gNew, d);
    let [tPrev, fPrev, gPrev, gtdPrev] = [0, f, g, gtd];
    let done = false;
    let iter = 0;
    let bracket: number[] = [];
    let bracketF: number[] = [];
    let bracketG: Float32Array[] = [];
    let bracketGtd: number[] = [];
    while (iter < this.maxLineSearch) {
      if (fNew > f + c1 * t * gtd || (iter > 1 && fNew >= fPrev)) {
        [bracket, bracketF, bracketG, bracketGtd] = [[tPrev, t], [fPrev, fNew], [gPrev, gNew], [gtdPrev, gtdNew]];
        break;
      }
      if (Math.abs(gtdNew) <= -c2 * gtd) {
        [bracket, bracketF, bracketG, bracketGtd] = [[t], [fNew], [gNew], [gtdNew]];
        done = true;
        break;
      }
      if (gtdNew >= 0) {
        [bracket, bracketF, bracketG, bracketGtd] = [[tPrev, t], [fPrev, fNew], [gPrev, gNew], [gtdPrev, gtdNew]];
        break;
      }
      const minStep = t + 0.01 * (t - tPrev);
      const maxStep = t * 10;
      const tmp = t;
      t = cubicInterpolate(tPrev, fPrev, gtdPrev, t, fNew, gtdNew, [minStep, maxStep]);
      [tPrev, fPrev, gPrev, gtdPrev] = [tmp, fNew, gNew, gtdNew];
      ({ loss: fNew, grad: gNew } = await this.evaluate(at(t)));
      gtdNew = dot(gNew, d);
      iter++;
    }
    if (iter === this.maxLineSearch) {
      [bracket, bracketF, bracketG, bracketGtd] = [[0, t], [f, fNew], [g, gNew], [gtd, gtdNew]];
    }
    // Zoom: shrink the bracket until the strong Wolfe conditions hold.
    let insufficientProgress = false;
    let [low, high] = bracketF[0] <= bracketF[bracketF.length - 1] ? [0, 1] : [1, 0];
    while (!done && iter < this.maxLineSearch) {
      if (Math.abs(bracket[1] - bracket[0]) * dNorm < this.toleranceChange) break;
      t = cubicInterpolate(bracket[0], bracketF[0], bracketGtd[0], bracket[1], bracketF[1], bracketGtd[1]);
      const bMax = Math.max(bracket[0], bracket[1]);
      const bMin = Math.min(bracket[0], bracket[1]);
      const eps = 0.1 * (bMax - bMin);
      if (Math.min(bMax - t, t - bMin) < eps) {
        if (insufficientProgress || t >= bMax || t <= bMin) {
          t = Math.abs(t - bMax) < Math.abs(t - bMin) ? bMax - eps : bMin + eps;
          insufficientProgress = false;
        } else {
          insufficientProgress = true;
        }
      } else {
        insufficientProgress = false;
      }
      ({ loss: fNew, grad: gNew } = await this.evaluate(at(t)));
      gtdNew = dot(gNew, d);
      iter++;
      if (fNew > f + c1 * t * gtd || fNew >= bracketF[low]) {
        [bracket[high], bracketF[high], bracketG[high], bracketGtd[high]] = [t, fNew, gNew, gtdNew];
        [low, high] = bracketF[0] <= bracketF[1] ? [0, 1] : [1, 0];
      } else {
        if (Math.abs(gtdNew) <= -c2 * gtd) {
          done = true;
        } else if (gtdNew * (bracket[high] - bracket[low]) >= 0) {
          [bracket[high], bracketF[high], bracketG[high], bracketGtd[high]] = [bracket[low], bracketF[low], bracketG[low], bracketGtd[low]];
        }
        [bracket[low], bracketF[low], bracketG[low], bracketGtd[low]] = [t, fNew, gNew, gtdNew];
      }
    }
    const pick = bracket.length === 1 ? 0 : low;
    return { t: bracket[pick], loss: bracketF[pick], grad: bracketG[pick] };
  }
}
