/**
 * Rewrites of the emitted ONNX nodes that no single op's emission can see.
 *
 * Phase round trip: a sub-pixel convolution ends in depth-to-space (emitDepthToSpace), and a
 * following convolution lowered onto a SpaceToDepth input starts by undoing it. Between them sit
 * only instance norm and ReLU, which do not care where a pixel's phases are stored: norm
 * statistics per channel cover the same values whether the phases are spread in space or stacked
 * in channels. So
 *
 *   depth-to-space(CRD, b) → InstanceNormalization → Relu → SpaceToDepth(b) → Conv(·, W)
 *
 * becomes
 *
 *   Reshape [N, C, b²·h, w] → InstanceNormalization → Reshape [N, C·b², h, w] → Relu → Conv(·, W')
 *
 * where W' is W with its input channels permuted from SpaceToDepth's block-major order to the
 * sub-pixel convolution's channel-major order (folded away by onnxruntime for constant weights).
 * Measured on the lengstrom network at 640x480: the DepthToSpace + SpaceToDepth pair cost ~31 ms.
 */
import type { onnx } from 'onnx-proto';
import type { Emitter } from './op.js';
import { depthToSpaceBlock } from './ops/conv-lowering.js';

function attributeInt(node: onnx.INodeProto, name: string): number | undefined {
  const a = node.attribute?.find((x) => x.name === name);
  return a?.i === undefined || a.i === null ? undefined : Number(a.i);
}

/** Applies the phase round-trip rewrite wherever it matches; returns the new node list. */
export function fusePhaseRoundTrips(
  nodes: readonly onnx.INodeProto[], constantShapes: ReadonlyMap<string, readonly number[]>, e: Emitter, outputs: ReadonlySet<string>,
): onnx.INodeProto[] {
  const consumers = new Map<string, onnx.INodeProto[]>();
  for (const node of nodes) for (const input of node.input ?? []) consumers.set(input, [...(consumers.get(input) ?? []), node]);
  const only = (name: string, opType: string): onnx.INodeProto | null => {
    const list = consumers.get(name) ?? [];
    return list.length === 1 && list[0].opType === opType && !outputs.has(name) ? list[0] : null;
  };
  const channelsOf = (name: string): number | null => {
    const shape = constantShapes.get(name);
    return shape?.length === 1 ? shape[0] : null;
  };

  const replaced = new Map<onnx.INodeProto, onnx.INodeProto[]>();
  const removed = new Set<onnx.INodeProto>();
  for (const d2s of nodes) {
    const b = depthToSpaceBlock(d2s);
    if (b === null) continue;
    const norm = only(d2s.output![0], 'InstanceNormalization');
    const relu = norm && only(norm.output![0], 'Relu');
    const s2d = relu && only(relu.output![0], 'SpaceToDepth');
    const conv = s2d && attributeInt(s2d, 'blocksize') === b ? only(s2d.output![0], 'Conv') : null;
    const channels = norm && channelsOf(norm.input![1]);
    if (!norm || !relu || !s2d || !conv || !channels || conv.input![0] !== s2d.output![0]) continue;

    const b2 = b * b;
    const stacked = e.temp('phases_stacked');
    const normalized = e.temp('phases_normalized');
    const spread = e.temp('phases_spread');
    const activated = e.temp('phases_relu');
    const weight = e.temp('w_channel_major');
    // W'[:, c·b² + t] = W[:, t·C + c]
    const order: number[] = [];
    for (let c = 0; c < channels; c++) for (let t = 0; t < b2; t++) order.push(t * channels + c);
    replaced.set(d2s, [
      { opType: 'Reshape', name: `${stacked}_op`, input: [d2s.input![0], e.int64s([0, channels, -1, 0], 'shape')], output: [stacked] },
      { ...norm, input: [stacked, norm.input![1], norm.input![2]], output: [normalized] },
      { opType: 'Reshape', name: `${spread}_op`, input: [normalized, e.int64s([0, channels * b2, -1, 0], 'shape')], output: [spread] },
      { ...relu, input: [spread], output: [activated] },
    ]);
    // The convolution stays where it was: its weight may be computed by nodes emitted after the
    // depth-to-space.
    replaced.set(conv, [
      { opType: 'Gather', name: `${weight}_op`, input: [conv.input![1], e.int64s(order, 'channel_order')], output: [weight], attribute: [{ name: 'axis', type: 2, i: 1 }] },
      { ...conv, input: [activated, weight, ...conv.input!.slice(2)] },
    ]);
    for (const n of [norm, relu, s2d]) removed.add(n);
  }
  return nodes.flatMap((n) => replaced.get(n) ?? (removed.has(n) ? [] : [n]));
}
