/**
 * Loss curves as a self-contained SVG line chart, for training previews: no scripts, no external
 * fonts or styles, so the file opens anywhere (a browser, an image viewer, sharp).
 */
import { expectInteger } from '../util/validate.js';

/** One named loss curve: `[step, value]` pairs, in any order. */
export interface LossSeries {
  readonly name: string;
  readonly points: readonly (readonly [number, number])[];
}

/** Options for {@link lossPlotSvg}. */
export interface LossPlotOptions {
  /** Width of the SVG in pixels, 200..10000 (default 800). */
  readonly width?: number;
  /** Height of the SVG in pixels, 150..10000 (default 450). */
  readonly height?: number;
  /** Heading above the chart (default none). */
  readonly title?: string;
  /** Logarithmic y axis (default true): losses fall over decades. */
  readonly logY?: boolean;
  /** Label of the x axis (default 'step'). */
  readonly xLabel?: string;
}

/** Most points drawn per series; longer series keep each bucket's minimum and maximum. */
export const MAX_PLOTTED_POINTS = 2000;

// matplotlib's tab10: distinct, and readable on white. Past ten series the colours repeat dashed.
const PALETTE = ['#1f77b4', '#ff7f0e', '#2ca02c', '#d62728', '#9467bd', '#8c564b', '#e377c2', '#7f7f7f', '#bcbd22', '#17becf'];
const FONT = 'font-family="sans-serif" fill="#333"';

interface Scale { readonly min: number; readonly max: number; readonly ticks: readonly number[]; }

/**
 * Draws loss curves as an SVG line chart: axes with ticks and labels, one colour per series and
 * a legend. Points with a non-finite step or value are skipped, and so are values <= 0 on a log
 * scale; a series with one point is drawn as a dot, one with none is listed as "no data". Series
 * longer than {@link MAX_PLOTTED_POINTS} are downsampled by keeping each bucket's minimum and
 * maximum, so spikes survive and the file stays small.
 *
 * @example
 * await writeFile('loss.svg', lossPlotSvg([{ name: 'style', points: [[0, 4e5], [100, 2e4]] }], { title: 'Training' }));
 * @throws {TypeError} when a series has no string name or its points are not `[number, number]` pairs.
 * @throws {RangeError} when `width` or `height` is out of range.
 */
export function lossPlotSvg(series: readonly LossSeries[], options: LossPlotOptions = {}): string {
  const width = options.width === undefined ? 800 : expectInteger('width', options.width, 200, 10_000);
  const height = options.height === undefined ? 450 : expectInteger('height', options.height, 150, 10_000);
  const logY = options.logY ?? true;
  if (typeof logY !== 'boolean') throw new TypeError(`Expected a boolean for logY but received ${String(logY)}`);
  const title = optionalText('title', options.title);
  const xLabel = optionalText('xLabel', options.xLabel) ?? 'step';
  if (!Array.isArray(series)) throw new TypeError('Expected an array of loss series');
  const curves = series.map((s, i) => ({ name: checkSeries(s, i), points: downsample(usablePoints(s.points, logY)) }));

  const plot = { left: 72, top: title === undefined ? 16 : 40, right: width - 20, bottom: height - 48 };
  const all = curves.flatMap((c) => c.points);
  const xs = linearScale(all.map((p) => p[0]), false);
  const ys = logY ? logScale(all.map((p) => p[1])) : linearScale(all.map((p) => p[1]), true);
  const toX = (x: number) => plot.left + ((x - xs.min) / (xs.max - xs.min)) * (plot.right - plot.left);
  const yOf = logY ? Math.log10 : (y: number) => y;
  const toY = (y: number) => plot.bottom - ((yOf(y) - yOf(ys.min)) / (yOf(ys.max) - yOf(ys.min))) * (plot.bottom - plot.top);

  const out: string[] = [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" viewBox="0 0 ${width} ${height}">`,
    `<rect width="${width}" height="${height}" fill="#fff"/>`,
  ];
  if (title !== undefined) out.push(`<text x="${width / 2}" y="24" text-anchor="middle" ${FONT} font-size="15">${escapeXml(title)}</text>`);
  out.push(`<g stroke="#e5e5e5" stroke-width="1">`);
  for (const t of xs.ticks) out.push(`<line x1="${r(toX(t))}" y1="${plot.top}" x2="${r(toX(t))}" y2="${plot.bottom}"/>`);
  for (const t of ys.ticks) out.push(`<line x1="${plot.left}" y1="${r(toY(t))}" x2="${plot.right}" y2="${r(toY(t))}"/>`);
  out.push('</g>', `<g ${FONT} font-size="12">`);
  const xText = tickLabels(xs.ticks);
  const yText = tickLabels(ys.ticks);
  xs.ticks.forEach((t, i) => out.push(`<text x="${r(toX(t))}" y="${plot.bottom + 16}" text-anchor="middle">${xText[i]}</text>`));
  ys.ticks.forEach((t, i) => out.push(`<text x="${plot.left - 6}" y="${r(toY(t) + 4)}" text-anchor="end">${yText[i]}</text>`));
  out.push(`<text x="${r((plot.left + plot.right) / 2)}" y="${height - 10}" text-anchor="middle">${escapeXml(xLabel)}</text>`);
  const yLabel = logY ? 'loss (log scale)' : 'loss';
  out.push(`<text transform="translate(16 ${r((plot.top + plot.bottom) / 2)}) rotate(-90)" text-anchor="middle">${yLabel}</text>`, '</g>');
  out.push(`<rect class="plot-area" x="${plot.left}" y="${plot.top}" width="${plot.right - plot.left}" height="${plot.bottom - plot.top}" fill="none" stroke="#999"/>`);

  curves.forEach((curve, i) => {
    const { colour, dash } = styleOf(i);
    const coords = curve.points.map(([x, y]) => `${r(toX(x))},${r(toY(y))}`);
    if (coords.length === 1) {
      const [cx, cy] = coords[0].split(',');
      out.push(`<circle class="series" data-series="${i}" cx="${cx}" cy="${cy}" r="3" fill="${colour}"/>`);
    } else if (coords.length > 1) {
      out.push(`<polyline class="series" data-series="${i}" points="${coords.join(' ')}" fill="none" stroke="${colour}" stroke-width="1.5" stroke-linejoin="round"${dash}/>`);
    }
  });
  out.push(legend(curves, plot.right, plot.top + 10), '</svg>');
  return out.join('\n') + '\n';
}

function legend(curves: readonly { name: string; points: readonly unknown[] }[], right: number, top: number): string {
  if (curves.length === 0) return '';
  const labels = curves.map((c) => (c.points.length === 0 ? `${c.name} (no data)` : c.name));
  // No font metrics without a renderer: 7 px a character is generous for 12 px sans-serif.
  const boxWidth = 38 + 7 * Math.max(...labels.map((l) => l.length));
  const x = right - 10 - boxWidth;
  const parts = [`<g class="legend" ${FONT} font-size="12">`,
    `<rect x="${x}" y="${top}" width="${boxWidth}" height="${8 + 18 * labels.length}" fill="#fff" fill-opacity="0.85" stroke="#ccc"/>`];
  labels.forEach((label, i) => {
    const y = top + 17 + 18 * i;
    const { colour, dash } = styleOf(i);
    parts.push(`<line x1="${x + 8}" y1="${y - 4}" x2="${x + 28}" y2="${y - 4}" stroke="${colour}" stroke-width="2"${dash}/>`);
    parts.push(`<text x="${x + 34}" y="${y}">${escapeXml(label)}</text>`);
  });
  parts.push('</g>');
  return parts.join('\n');
}

function styleOf(index: number): { colour: string; dash: string } {
  const round = Math.floor(index / PALETTE.length);
  return { colour: PALETTE[index % PALETTE.length], dash: round === 0 ? '' : ` stroke-dasharray="${4 + 2 * round},3"` };
}

function checkSeries(s: LossSeries, index: number): string {
  if (typeof s !== 'object' || s === null || typeof s.name !== 'string') {
    throw new TypeError(`Expected series[${index}] to be an object with a string name`);
  }
  if (!Array.isArray(s.points)) throw new TypeError(`Expected series[${index}].points ('${s.name}') to be an array of [step, value] pairs`);
  return s.name;
}

function optionalText(name: string, value: unknown): string | undefined {
  if (value !== undefined && typeof value !== 'string') throw new TypeError(`Expected a string for ${name} but received ${String(value)}`);
  return value;
}

/** The drawable points, sorted by step. */
function usablePoints(points: readonly (readonly [number, number])[], logY: boolean): [number, number][] {
  const kept: [number, number][] = [];
  for (const p of points) {
    if (!Array.isArray(p) || p.length !== 2 || typeof p[0] !== 'number' || typeof p[1] !== 'number') {
      throw new TypeError(`Expected [step, value] pairs of numbers but received ${JSON.stringify(p)}`);
    }
    if (Number.isFinite(p[0]) && Number.isFinite(p[1]) && (!logY || p[1] > 0)) kept.push([p[0], p[1]]);
  }
  return kept.sort((a, b) => a[0] - b[0]);
}

/** Splits into MAX_PLOTTED_POINTS / 2 buckets and keeps each one's lowest and highest value, in step order. */
function downsample(points: readonly [number, number][]): [number, number][] {
  if (points.length <= MAX_PLOTTED_POINTS) return points.slice();
  const buckets = MAX_PLOTTED_POINTS / 2;
  const out: [number, number][] = [];
  for (let b = 0; b < buckets; b++) {
    const start = Math.floor((b * points.length) / buckets);
    const end = Math.floor(((b + 1) * points.length) / buckets);
    let lo = start;
    let hi = start;
    for (let i = start + 1; i < end; i++) {
      if (points[i][1] < points[lo][1]) lo = i;
      if (points[i][1] > points[hi][1]) hi = i;
    }
    out.push(points[Math.min(lo, hi)]);
    if (lo !== hi) out.push(points[Math.max(lo, hi)]);
  }
  return out;
}

/** A linear axis over `values` with "nice" ticks (1, 2, 5 x 10^k apart); `pad` adds 5% at each end. */
function linearScale(values: readonly number[], pad: boolean): Scale {
  let [min, max] = values.length === 0 ? [0, 1] : minMax(values);
  if (max === min) {
    const half = min === 0 ? 1 : Math.abs(min) * 0.1;
    min -= half;
    max += half;
  } else if (pad) {
    const extra = (max - min) * 0.05;
    min -= extra;
    max += extra;
  }
  return { min, max, ticks: niceTicks(min, max) };
}

/** A log10 axis over the positive `values`, padded by 5% of its span in decades. */
function logScale(values: readonly number[]): Scale {
  let [lo, hi] = (values.length === 0 ? [1, 10] : minMax(values)).map(Math.log10);
  const extra = hi === lo ? 0.5 : (hi - lo) * 0.05;
  lo -= extra;
  hi += extra;
  const min = 10 ** lo;
  const max = 10 ** hi;
  const span = hi - lo;
  const ticks: number[] = [];
  if (span > 1.5) {
    // Whole decades, every `step`th one so there are at most about eight.
    const step = Math.max(1, Math.ceil(span / 8));
    for (let k = Math.ceil(lo / step) * step; k <= hi; k += step) ticks.push(10 ** k);
  } else {
    const mantissas = span > 0.7 ? [1, 2, 5] : [1, 2, 3, 4, 5, 6, 7, 8, 9];
    for (let k = Math.floor(lo); k <= Math.ceil(hi); k++) {
      for (const m of mantissas) {
        const v = Number((m * 10 ** k).toPrecision(12));
        if (v >= min && v <= max) ticks.push(v);
      }
    }
  }
  // A range inside one step of 1..9 x 10^k: fall back to linear ticks, placed on the log axis.
  return { min, max, ticks: ticks.length >= 2 ? ticks : niceTicks(min, max) };
}

function minMax(values: readonly number[]): [number, number] {
  let min = Infinity;
  let max = -Infinity;
  for (const v of values) {
    if (v < min) min = v;
    if (v > max) max = v;
  }
  return [min, max];
}

function niceTicks(min: number, max: number, target = 6): number[] {
  const rough = (max - min) / target;
  const power = 10 ** Math.floor(Math.log10(rough));
  const step = [1, 2, 5, 10].map((m) => m * power).find((s) => s >= rough) ?? 10 * power;
  const ticks: number[] = [];
  for (let i = Math.ceil(min / step); i * step <= max; i++) ticks.push(Number((i * step).toPrecision(12)));
  return ticks;
}

/**
 * Tick labels for one axis, all in the same notation: plain (0.001, 250, 12000) unless the axis
 * reaches 1e6 or has ticks under 0.001, then exponential (2.5e-5, 1e6) for every tick, so that a
 * log axis reads 1e3, 1e4, 1e5 rather than 1000, 10000, 1e5.
 */
function tickLabels(ticks: readonly number[]): string[] {
  const rounded = ticks.map((t) => Number(t.toPrecision(6)));
  const sizes = rounded.map(Math.abs).filter((a) => a !== 0);
  const exponential = sizes.some((a) => a >= 1e6 || a < 1e-3);
  return rounded.map((v) => (exponential && v !== 0 ? v.toExponential().replace('e+', 'e') : String(v)));
}

function r(value: number): number {
  return Math.round(value * 10) / 10;
}

/** Escapes text for SVG element content and attribute values; control characters XML forbids become U+FFFD. */
function escapeXml(text: string): string {
  return text.replace(/[\u0000-\u0008\u000b\u000c\u000e-\u001f]/g, '\ufffd').replace(/[&<>"']/g, (ch) => `&${({ '&': 'amp', '<': 'lt', '>': 'gt', '"': 'quot', "'": 'apos' } as Record<string, string>)[ch]};`);
}
