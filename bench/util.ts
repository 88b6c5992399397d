/** Shared benchmark helpers: timing, machine description, table output, the TF.js-wasm peer. */
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { cpus, totalmem } from 'node:os';
import { tf } from '../test/helpers/tf-reference.js';

export interface Timing {
  readonly medianMs: number;
  readonly bestMs: number;
  readonly runs: number;
}

/** Runs `fn` `warmup` times untimed, then `runs` times; reports median and best. */
export async function time(fn: () => Promise<unknown> | unknown, runs = 7, warmup = 2): Promise<Timing> {
  for (let i = 0; i < warmup; i++) await fn();
  const times: number[] = [];
  for (let i = 0; i < runs; i++) {
    const t0 = performance.now();
    await fn();
    times.push(performance.now() - t0);
  }
  times.sort((a, b) => a - b);
  return { medianMs: times[Math.floor(runs / 2)], bestMs: times[0], runs };
}

/** CPU model and family (DESIGN.md's figures differ by family: 6 Intel, 25 Zen 4), cores, memory, Node and onnxruntime-node versions. */
export function machine(): string {
  const cpu = cpus();
  let family = '';
  try {
    const info = readFileSync('/proc/cpuinfo', 'utf8');
    const field = (name: string): string | undefined => new RegExp(`^${name}\\s*:\\s*(.+)$`, 'm').exec(info)?.[1];
    family = ` (cpu family ${field('cpu family') ?? '?'}, model ${field('model') ?? '?'})`;
  } catch {
    // not Linux
  }
  const ort = (createRequire(import.meta.url)('onnxruntime-node/package.json') as { version: string }).version;
  return `${cpu[0]?.model ?? 'unknown CPU'}${family} · ${cpu.length} logical cores · ${(totalmem() / 2 ** 30).toFixed(0)} GiB · Node ${process.version} · onnxruntime-node ${ort}`;
}

export function table(headers: string[], rows: (string | number)[][]): string {
  const cells = [headers, ...rows.map((r) => r.map(String))];
  const widths = headers.map((_, i) => Math.max(...cells.map((r) => r[i].length)));
  const line = (r: string[]): string => `| ${r.map((c, i) => c.padEnd(widths[i])).join(' | ')} |`;
  return [line(cells[0]), `|${widths.map((w) => '-'.repeat(w + 2)).join('|')}|`, ...cells.slice(1).map(line)].join('\n');
}

/** A deterministic photo-like test input: smooth gradients plus texture, 0..255, planar RGB. */
export function syntheticImage(width: number, height: number): Float32Array {
  const data = new Float32Array(3 * width * height);
  const plane = width * height;
  for (let y = 0; y < height; y++) {
    for (let x = 0; x < width; x++) {
      const i = y * width + x;
      data[i] = 128 + 100 * Math.sin(x / 17) * Math.cos(y / 23);
      data[plane + i] = (255 * x) / width;
      data[2 * plane + i] = 128 + 90 * Math.sin((x + y) / 9);
    }
  }
  return data;
}

/**
 * Peak resident memory of this process in MiB. Read from /proc (VmHWM) where there is one:
 * getrusage's maxrss survives exec on Linux, so a child started by a large benchmark process
 * would report its parent's peak.
 */
export function peakRssMiB(): number {
  try {
    const status = readFileSync('/proc/self/status', 'utf8');
    const match = /^VmHWM:\s+(\d+) kB/m.exec(status);
    if (match) return Number(match[1]) / 1024;
  } catch {
    // not Linux
  }
  return process.resourceUsage().maxRSS / 1024;
}

/**
 * Switches TF.js to its wasm backend with `threads` threads (switch back with
 * `tf.setBackend('cpu')`); returns a line saying which build runs and on how many threads.
 */
export async function useTfWasm(threads: number): Promise<string> {
  const wasm = await import('@tensorflow/tfjs-backend-wasm');
  wasm.setThreadsCount(threads);
  await tf.setBackend('wasm');
  await tf.ready();
  const [simd, multithread] = await Promise.all([tf.env().getAsync('WASM_HAS_SIMD_SUPPORT'), tf.env().getAsync('WASM_HAS_MULTITHREAD_SUPPORT')]);
  return `tfjs-wasm: ${simd ? 'SIMD' : 'scalar'} build, ${wasm.getThreadsCount()} thread(s)` +
    (multithread ? '' : ' (its threaded build needs Web Workers, which tfjs-backend-wasm does not find in Node)');
}
