/** Normalisation: instance norm over H and W per image and channel (biased variance). */
import { formatShape } from '../shape.js';
import { expectArity, shapeError, type OpDef } from '../op.js';
import * as F from '../functional.js';

export interface InstanceNormAttrs {
  readonly epsilon: number;
}

export const instanceNorm: OpDef<InstanceNormAttrs> = {
  type: 'instanceNorm',
  inferShape(inputs) {
    expectArity('instanceNorm', inputs, 3);
    const [x, scale, bias] = inputs;
    if (x.length !== 4) shapeError('instanceNorm', `input must be NCHW but has shape ${formatShape(x)}`);
    for (const [what, s] of [['scale', scale], ['bias', bias]] as const) {
      if (s.length !== 1 || s[0] !== x[1]) shapeError('instanceNorm', `${what} must have shape [${x[1]}] but has ${formatShape(s)}`);
    }
    return x;
  },
  emit(e, { inputs, output, attrs }) {
    e.node('InstanceNormalization', inputs, [output], { epsilon: { float: attrs.epsilon } });
  },
  grad({ inputs: [x, scale, bias], dy, attrs, needs }) {
    // x̂ = (x − μ)/σ per image and channel; with g = dy·γ:
    // dx = (g − mean(g) − x̂·mean(g·x̂)) / σ,  dγ = Σ dy·x̂,  dβ = Σ dy.
    const c = x.shape[1] as number;
    const perChannel = (v: typeof x) => F.reshape(v, [1, c, 1, 1]);
    const mean = F.reduceMean(x, [2, 3], true);
    const centered = F.sub(x, mean);
    const variance = F.reduceMean(F.square(centered), [2, 3], true);
    const sigma = F.sqrt(F.add(variance, F.scalarLike(x, attrs.epsilon)));
    const normalized = F.div(centered, sigma);
    let dx = null;
    if (needs[0]) {
      const g = F.mul(dy, perChannel(scale));
      const meanG = F.reduceMean(g, [2, 3], true);
      const meanGx = F.reduceMean(F.mul(g, normalized), [2, 3], true);
      dx = F.div(F.sub(F.sub(g, meanG), F.mul(normalized, meanGx)), sigma);
    }
    return [
      dx,
      needs[1] ? F.reduceSum(F.mul(dy, normalized), [0, 2, 3]) : null,
      needs[2] ? F.reduceSum(dy, [0, 2, 3]) : null,
    ];
  },
};
