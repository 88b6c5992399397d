import { test } from 'node:test';
import assert from 'node:assert/strict';
import sharp from 'sharp';
import { lossPlotSvg, MAX_PLOTTED_POINTS, type LossSeries } from '../../src/style/loss-plot.js';

type Point = [number, number];

/** The points of every series' polyline, in document order. */
function polylines(svg: string): Point[][] {
  return [...svg.matchAll(/<polyline\b[^>]*\bpoints="([^"]*)"/g)].map((m) =>
    m[1].trim().split(/\s+/).map((pair) => pair.split(',').map(Number) as Point));
}

function plotArea(svg: string): { left: number; top: number; right: number; bottom: number } {
  const m = /<rect class="plot-area" x="([\d.]+)" y="([\d.]+)" width="([\d.]+)" height="([\d.]+)"/.exec(svg);
  assert.ok(m, 'the SVG marks its plot area');
  const [left, top, width, height] = m.slice(1).map(Number);
  return { left, top, right: left + width, bottom: top + height };
}

/** Renders with librsvg (through sharp): throws on malformed XML or SVG. */
async function rendered(svg: string): Promise<{ width: number; height: number }> {
  const { info } = await sharp(Buffer.from(svg)).png().toBuffer({ resolveWithObject: true });
  return { width: info.width, height: info.height };
}

const curve = (n: number, f: (i: number) => number): Point[] => Array.from({ length: n }, (_, i) => [i, f(i)]);

test('the SVG parses and renders at the requested size, with one coloured polyline per series', async () => {
  const series: LossSeries[] = [
    { name: 'content', points: curve(50, (i) => 1000 / (i + 1)) },
    { name: 'style', points: curve(50, (i) => 5e5 * Math.exp(-i / 10)) },
    { name: 'tv', points: curve(50, (i) => 10 + i) },
  ];
  const svg = lossPlotSvg(series, { width: 640, height: 360, title: 'Training' });
  assert.deepEqual(await rendered(svg), { width: 640, height: 360 });
  assert.deepEqual(await rendered(lossPlotSvg(series)), { width: 800, height: 450 }, 'default size');
  const lines = polylines(svg);
  assert.equal(lines.length, 3);
  lines.forEach((line) => assert.equal(line.length, 50));
  const strokes = [...svg.matchAll(/<polyline\b[^>]*\bstroke="([^"]+)"/g)].map((m) => m[1]);
  assert.equal(new Set(strokes).size, 3, `distinct colours, got ${strokes.join(', ')}`);
  for (const name of ['content', 'style', 'tv', 'Training']) assert.ok(svg.includes(`>${name}</text>`), `label ${name}`);
});

test('points are drawn in step order and inside the plot area', () => {
  const shuffled: Point[] = [[30, 4], [0, 100], [20, 9], [10, 25], [40, 2]];
  const svg = lossPlotSvg([{ name: 'a', points: shuffled }, { name: 'b', points: [[5, 50], [35, 3]] }]);
  const area = plotArea(svg);
  for (const line of polylines(svg)) {
    for (let i = 0; i < line.length; i++) {
      const [x, y] = line[i];
      assert.ok(x >= area.left && x <= area.right && y >= area.top && y <= area.bottom, `(${x}, ${y}) inside ${JSON.stringify(area)}`);
      if (i > 0) assert.ok(x > line[i - 1][0], 'x increases');
    }
  }
  const [a] = polylines(svg);
  // Sorted by step, the values fall, so on screen y grows (downwards).
  for (let i = 1; i < a.length; i++) assert.ok(a[i][1] > a[i - 1][1], `point ${i} lower than point ${i - 1}`);
  // The steps span the x axis exactly.
  assert.ok(Math.abs(a[0][0] - area.left) < 0.2 && Math.abs(a[a.length - 1][0] - area.right) < 0.2);
});

test('log scale puts 10x values a decade apart; linear scale does not', () => {
  const points: Point[] = [[0, 1], [1, 10], [2, 100], [3, 1000]];
  const [log] = polylines(lossPlotSvg([{ name: 'loss', points }]));
  const steps = log.slice(1).map(([, y], i) => log[i][1] - y);
  for (const d of steps) {
    assert.ok(d > 20, `higher values are drawn higher (${steps.join(', ')})`);
    assert.ok(Math.abs(d - steps[0]) < 0.25, `equal spacing per decade, got ${steps.join(', ')}`);
  }
  const [linear] = polylines(lossPlotSvg([{ name: 'loss', points }], { logY: false }));
  const first = linear[0][1] - linear[1][1];
  const last = linear[2][1] - linear[3][1];
  assert.ok(last > 50 * first, `linear: the last step is 100x the first (${first}, ${last})`);
});

test('NaN, Infinity, and (on a log scale) non-positive values are skipped', () => {
  const points: Point[] = [[0, 8], [1, NaN], [2, Infinity], [3, -1], [4, 0], [5, 2], [NaN, 3], [Infinity, 3]];
  const [log] = polylines(lossPlotSvg([{ name: 'x', points }]));
  assert.equal(log.length, 2);
  const [linear] = polylines(lossPlotSvg([{ name: 'x', points }], { logY: false }));
  assert.equal(linear.length, 4, 'linear keeps -1 and 0');
  assert.ok(!/NaN|Infinity/.test(lossPlotSvg([{ name: 'x', points }])));
});

test('a single point is a dot, an empty series is listed as having no data, and no series is still a chart', async () => {
  const svg = lossPlotSvg([{ name: 'one', points: [[7, 3]] }, { name: 'none', points: [] }, { name: 'nan', points: [[1, NaN]] }]);
  assert.equal(polylines(svg).length, 0);
  assert.equal((svg.match(/<circle\b/g) ?? []).length, 1);
  assert.ok(svg.includes('>none (no data)</text>') && svg.includes('>nan (no data)</text>'));
  assert.ok(!/NaN|Infinity/.test(svg));
  const [, cx, cy] = /<circle[^>]*cx="([\d.]+)" cy="([\d.]+)"/.exec(svg) ?? [];
  const area = plotArea(svg);
  assert.ok(Number(cx) > area.left && Number(cx) < area.right && Number(cy) > area.top && Number(cy) < area.bottom, 'dot in the middle');
  assert.deepEqual(await rendered(svg), { width: 800, height: 450 });
  const empty = lossPlotSvg([]);
  assert.deepEqual(await rendered(empty), { width: 800, height: 450 });
  assert.ok(empty.includes('class="plot-area"'));
});

test('100k points are downsampled to a bounded size, keeping a one-step spike', async () => {
  const n = 100_000;
  const noisy = curve(n, (i) => 1e4 * Math.exp(-i / 20_000) + 100 * ((i * 7919) % 13) + (i === 54_321 ? 1e6 : 0));
  const svg = lossPlotSvg([{ name: 'noisy', points: noisy }, { name: 'smooth', points: curve(n, (i) => 500 + i / 100) }]);
  const lines = polylines(svg);
  for (const line of lines) assert.ok(line.length <= MAX_PLOTTED_POINTS && line.length > MAX_PLOTTED_POINTS / 2, `${line.length} points`);
  assert.ok(svg.length < 80_000, `${svg.length} characters`);
  // The spike is the maximum: it sets the top of the y range, 5% (of the log span) below the frame.
  const area = plotArea(svg);
  const highest = Math.min(...lines[0].map(([, y]) => y));
  assert.ok(highest < area.top + 0.06 * (area.bottom - area.top), `spike drawn at y = ${highest}`);
  await rendered(svg);
});

test('names and titles are escaped for XML', async () => {
  const svg = lossPlotSvg([{ name: 'a<b&c', points: curve(3, (i) => i + 1) }, { name: `"q" 'x'`, points: [] }], { title: 'T <&> "1"', xLabel: 'it & ep' });
  assert.ok(svg.includes('a&lt;b&amp;c'));
  assert.ok(!svg.includes('a<b&c'));
  assert.ok(svg.includes('T &lt;&amp;&gt; &quot;1&quot;') && svg.includes('it &amp; ep') && svg.includes('&apos;x&apos;'));
  await rendered(svg);
  await rendered(lossPlotSvg([{ name: 'bell\u0007', points: [[0, 1], [1, 2]] }]));
});

test('bad options and series are refused with the error class', () => {
  const ok = [{ name: 'a', points: [[0, 1]] as Point[] }];
  assert.throws(() => lossPlotSvg(ok, { width: 100 }), { name: 'RangeError', message: /width/ });
  assert.throws(() => lossPlotSvg(ok, { height: 2.5 }), { name: 'TypeError', message: /height/ });
  assert.throws(() => lossPlotSvg([{ name: 3, points: [] } as unknown as LossSeries]), { name: 'TypeError', message: /series\[0\]/ });
  assert.throws(() => lossPlotSvg([{ name: 'a', points: [[1, 2, 3]] } as unknown as LossSeries]), { name: 'TypeError', message: /\[step, value\]/ });
  assert.throws(() => lossPlotSvg([{ name: 'a', points: [[1, '2']] } as unknown as LossSeries]), TypeError);
  assert.throws(() => lossPlotSvg(ok, { logY: 'no' as unknown as boolean }), { name: 'TypeError', message: /logY/ });
});
