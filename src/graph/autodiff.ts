/**
 * Reverse-mode automatic differentiation at graph-build time: one reverse sweep over the recorded
 * nodes, asking each op's gradient rule for its inputs' gradients and accumulating them where a
 * value fans out. The result is more graph — ordinary ONNX operators that onnxruntime runs at
 * native speed, in the same model as the forward pass.
 */
import type { Node, Value } from './builder.js';
import * as F from './functional.js';
import { formatShape, sameShape, type Shape } from './shape.js';

/** Whether a value of shape `shape` broadcasts to `broadcast` (NumPy rules). */
function broadcastsTo(shape: Shape, broadcast: Shape): boolean {
  const extra = broadcast.length - shape.length;
  return extra >= 0 && shape.every((d, i) => d === 1 || d === broadcast[i + extra]);
}

/** Sums a broadcast gradient back to `shape` (NumPy broadcasting in reverse). */
export function reduceToShape(grad: Value, shape: Shape): Value {
  if (sameShape(grad.shape, shape)) return grad;
  if (!broadcastsTo(shape, grad.shape)) throw new Error(`autodiff: a gradient of shape ${formatShape(grad.shape)} is not a broadcast of ${formatShape(shape)}`);
  const extra = grad.rank - shape.length;
  const axes: number[] = [];
  grad.shape.forEach((d, i) => {
    if (i < extra || (shape[i - extra] === 1 && d !== 1)) axes.push(i);
  });
  let reduced = axes.length > 0 ? F.reduceSum(grad, axes, true) : grad;
  if (!sameShape(reduced.shape, shape)) {
    if (!shape.every((d) => typeof d === 'number')) throw new Error(`autodiff: cannot reduce gradient ${formatShape(grad.shape)} to ${formatShape(shape)}`);
    reduced = F.reshape(reduced, shape as number[]);
  }
  return reduced;
}

/**
 * Gradients of the scalar `loss` with respect to each of `wrt` (inputs or parameters of the same
 * graph), as new values in that graph. A value that `loss` does not depend on gets a zero gradient.
 * @throws Error naming the op when a node on the way has no gradient rule.
 */
export function grad(loss: Value, wrt: readonly Value[]): Value[] {
  const graph = loss.graph;
  if (loss.shape.some((d) => d !== 1)) throw new RangeError(`autodiff: the loss must be a scalar, got shape ${formatShape(loss.shape)}`);
  for (const v of wrt) if (v.graph !== graph) throw new Error(`autodiff: '${v.name}' belongs to another graph`);

  // Nodes between `wrt` and `loss`: reachable backward from loss and forward from wrt.
  const dependsOnWrt = new Set<Value>(wrt);
  for (const node of graph.nodes) {
    if (node.inputs.some((v) => dependsOnWrt.has(v))) dependsOnWrt.add(node.output);
  }
  const onPath = new Set<Node>();
  const needed = new Set<Value>([loss]);
  const forward = graph.nodes.slice(0, graph.nodes.indexOf(loss.node!) + 1);
  for (let i = forward.length - 1; i >= 0; i--) {
    const node = forward[i];
    if (!needed.has(node.output) || !dependsOnWrt.has(node.output)) continue;
    onPath.add(node);
    for (const input of node.inputs) if (dependsOnWrt.has(input)) needed.add(input);
  }

  const grads = new Map<Value, Value>([[loss, F.broadcastTo(graph.scalar(1, 'dloss'), loss.shape)]]);
  for (let i = forward.length - 1; i >= 0; i--) {
    const node = forward[i];
    if (!onPath.has(node)) continue;
    const dy = grads.get(node.output);
    if (!dy) continue;
    if (!node.op.grad) throw new Error(`autodiff: no gradient rule for ${node.op.type} (node '${node.output.name}')`);
    const needs = node.inputs.map((v) => needed.has(v));
    const inputGrads = node.op.grad({ inputs: node.inputs, output: node.output, attrs: node.attrs as never, dy, needs });
    node.inputs.forEach((input, k) => {
      const g = inputGrads[k];
      if (!needs[k] || !g) return;
      if (!broadcastsTo(input.shape, g.shape)) {
        throw new Error(`autodiff: ${node.op.type} gave input ${k} a gradient of shape ${formatShape(g.shape)} for a value of shape ${formatShape(input.shape)}`);
      }
      const shaped = reduceToShape(g, input.shape);
      const previous = grads.get(input);
      grads.set(input, previous ? F.add(previous, shaped) : shaped);
    });
  }
  return wrt.map((v) => grads.get(v) ?? zerosLike(v));
}

function zerosLike(v: Value): Value {
  if (!v.shape.every((d) => typeof d === 'number')) throw new Error(`autodiff: no path from '${v.name}' to the loss, and its shape is symbolic`);
  return F.broadcastTo(v.graph.scalar(0, 'zero'), v.shape);
}
