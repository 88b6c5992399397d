/** The optimisers on problems with known minima (Rosenbrock, an ill-conditioned quadratic). */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Lbfgs } from '../../src/style/optim/lbfgs.js';
import { Adam } from '../../src/style/optim/adam.js';
import type { Objective } from '../../src/style/optim/objective.js';

/** Extended Rosenbrock in n dimensions: minimum 0 at (1, …, 1). */
const rosenbrock: Objective = async (x) => {
  let loss = 0;
  const grad = new Float32Array(x.length);
  for (let i = 0; i < x.length - 1; i++) {
    const a = x[i + 1] - x[i] * x[i];
    const b = 1 - x[i];
    loss += 100 * a * a + b * b;
    grad[i] += -400 * x[i] * a - 2 * b;
    grad[i + 1] += 200 * a;
  }
  return { loss, grad };
};

/** Σ kᵢ (xᵢ − i)² with condition number 100. */
const quadratic: Objective = async (x) => {
  let loss = 0;
  const grad = new Float32Array(x.length);
  for (let i = 0; i < x.length; i++) {
    const k = 10 ** (2 * (i / (x.length - 1)));
    loss += k * (x[i] - i) ** 2;
    grad[i] = 2 * k * (x[i] - i);
  }
  return { loss, grad };
};

test('L-BFGS with strong-Wolfe line search minimises the 10-D Rosenbrock function', async () => {
  const x = new Float32Array(10).fill(-1.2);
  const opt = new Lbfgs(rosenbrock, x, { historySize: 10 });
  let last = Infinity;
  for (let i = 0; i < 200 && !opt.converged; i++) last = (await opt.step()).loss;
  assert.ok(last < 1e-6, `loss ${last}`);
  for (const v of x) assert.ok(Math.abs(v - 1) < 1e-2, `x = ${[...x].join(', ')}`);
  assert.ok(opt.evaluations < 400, `${opt.evaluations} evaluations`);
});

test('L-BFGS solves an ill-conditioned quadratic in few iterations', async () => {
  const x = new Float32Array(50);
  const opt = new Lbfgs(quadratic, x, { historySize: 20 });
  let iterations = 0;
  let loss = Infinity;
  while (!opt.converged && iterations < 200) {
    loss = (await opt.step()).loss;
    iterations++;
    if (loss < 1e-8) break;
  }
  assert.ok(loss < 1e-6, `loss ${loss} after ${iterations} iterations`);
  assert.ok(iterations < 120, `${iterations} iterations`);
});

test('L-BFGS stops at once when started at the minimum', async () => {
  const x = Float32Array.from({ length: 5 }, (_, i) => i);
  const opt = new Lbfgs(quadratic, x);
  const result = await opt.step();
  assert.equal(result.converged, true);
  assert.equal(result.loss, 0);
});

test('Adam descends the quadratic', async () => {
  const x = new Float32Array(8);
  const opt = new Adam(quadratic, x, { learningRate: 0.1 });
  const first = (await opt.step()).loss;
  let loss = first;
  for (let i = 0; i < 500; i++) loss = (await opt.step()).loss;
  assert.ok(loss < first * 1e-3, `loss ${first} → ${loss}`);
});
