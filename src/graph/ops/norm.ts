/** Normalisation: instance norm over H and W per image and channel (biased variance). */
import { formatShape } from '../shape.js';
import { expectArity, shapeError, type OpDef } from '../op.js';

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
};
