import { Graph, F, ops, toOnnxBytes } from './src/graph/index.js';
import { loadModel } from './src/runtime/session.js';
const rnd = (n: number) => new Float32Array(n).map(() => Math.random() - 0.5);
async function time(label: string, g: Graph, dims: number[]) {
  const m = await loadModel(toOnnxBytes(g), { threads: 2 });
  const data = rnd(dims.reduce((a, b) => a * b));
  const t: number[] = [];
  for (let i = 0; i < 8; i++) { const t0 = performance.now(); await m.run({ x: { data, dims } }); t.push(performance.now() - t0); }
  t.sort((a, b) => a - b); console.log(label.padEnd(40), t[0].toFixed(1), t[2].toFixed(1));
}
const H = 256;
{ const g = new Graph(); const x = g.input('x', [1, 32, H, H]); g.output(F.conv2d(x, g.param('w', { data: rnd(3 * 32 * 81), shape: [3, 32, 9, 9] }), undefined, { stride: 1, padding: [4, 4, 4, 4] }), 'y'); await time('conv9 32->3', g, [1, 32, H, H]); }
{ const g = new Graph(); const x = g.input('x', [1, 32, H, H]); const s = g.apply(ops.spaceToDepth, [x], { blockSize: 2 });
  const y = F.conv2d(s, g.param('w', { data: rnd(12 * 128 * 25), shape: [12, 128, 5, 5] }), undefined, { stride: 1, padding: [2, 2, 2, 2] });
  g.output(F.depthToSpace(y, 2), 'y'); await time('s2d conv5 128->12 d2s', g, [1, 32, H, H]); }
{ const g = new Graph(); const x = g.input('x', [1, 32, H, H]); const s = g.apply(ops.spaceToDepth, [x], { blockSize: 4 });
  const y = F.conv2d(s, g.param('w', { data: rnd(48 * 512 * 9), shape: [48, 512, 3, 3] }), undefined, { stride: 1, padding: [1, 1, 1, 1] });
  g.output(F.depthToSpace(y, 4), 'y'); await time('s2d4 conv3 512->48 d2s', g, [1, 32, H, H]); }
{ const g = new Graph(); const x = g.input('x', [1, 64, H / 2, H / 2]); g.output(F.convTranspose2d(x, g.param('w', { data: rnd(64 * 32 * 9), shape: [64, 32, 3, 3] }), undefined, { stride: 2, pads: [0, 0, 1, 1] }), 'y'); await time('convT 64->32', g, [1, 64, H / 2, H / 2]); }
{ const g = new Graph(); const x = g.input('x', [1, 64, H / 2, H / 2]);
  const y = F.conv2d(x, g.param('w', { data: rnd(128 * 64 * 4), shape: [128, 64, 2, 2] }), undefined, { stride: 1, padding: [1, 1, 0, 0] });
  g.output(F.depthToSpace(y, 2), 'y'); await time('subpixel conv2 64->128 d2s', g, [1, 64, H / 2, H / 2]); }
{ const g = new Graph(); const x = g.input('x', [1, 128, H / 4, H / 4]); g.output(F.convTranspose2d(x, g.param('w', { data: rnd(64 * 128 * 9), shape: [128, 64, 3, 3] }), undefined, { stride: 2, pads: [0, 0, 1, 1] }), 'y'); await time('convT 128->64', g, [1, 128, H / 4, H / 4]); }
{ const g = new Graph(); const x = g.input('x', [1, 128, H / 4, H / 4]);
  const y = F.conv2d(x, g.param('w', { data: rnd(256 * 128 * 4), shape: [256, 128, 2, 2] }), undefined, { stride: 1, padding: [1, 1, 0, 0] });
  g.output(F.depthToSpace(y, 2), 'y'); await time('subpixel conv2 128->256 d2s', g, [1, 128, H / 4, H / 4]); }
{ const g = new Graph(); const x = g.input('x', [1, 3, H, H]); g.output(F.conv2d(x, g.param('w', { data: rnd(3 * 32 * 81), shape: [32, 3, 9, 9] }), undefined, { stride: 1, padding: [4, 4, 4, 4] }), 'y'); await time('conv9 3->32', g, [1, 3, H, H]); }
