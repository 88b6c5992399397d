/**
 * Server stylize throughput: `pastiche serve` (default limits, in a child process so its RSS is
 * its own) answering N concurrent clients that POST a 640x480 JPEG to /api/stylize for a fixed
 * time. Clients honour Retry-After on 503/429, as the API asks. Peer: the same work (decode, network,
 * encode) called in this process one image after another, without HTTP or the server's slots.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { setTimeout as sleep } from 'node:timers/promises';
import { fileURLToPath } from 'node:url';
import { readImage, writeImage } from '../src/image/codec.js';
import { clearModelCache } from '../src/runtime/index.js';
import { openStyleModel } from '../src/style/model.js';
import { stylizeImage } from '../src/style/transfer.js';
import { table } from './util.js';

/** A running bench server child and how to reach and measure it. */
export interface ServerChild {
  readonly url: string;
  readonly pid: number;
  readonly limits: { maxConcurrent: number; maxQueued: number; retryAfterSeconds: number };
  stop(): Promise<void>;
}

/** Starts bench/web-server-child.ts with `env.PASTICHE_HOME` as its store; resolves when it listens. */
export async function startServerChild(env: NodeJS.ProcessEnv): Promise<ServerChild> {
  const script = fileURLToPath(new URL('./web-server-child.ts', import.meta.url));
  const child: ChildProcess = spawn(process.execPath, ['--import', 'tsx', script], { env, stdio: ['pipe', 'pipe', 'inherit'] });
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  const line = await new Promise<string>((resolve, reject) => {
    createInterface({ input: child.stdout! }).once('line', resolve);
    child.once('exit', (code) => reject(new Error(`bench: the server child exited with ${code} before listening`)));
  });
  const info = JSON.parse(line) as Omit<ServerChild, 'stop'>;
  return {
    ...info,
    stop: async () => {
      child.stdin!.end();
      const timer = setTimeout(() => child.kill('SIGKILL'), 10_000);
      await exited;
      clearTimeout(timer);
    },
  };
}

/** Resident memory of process `pid` in MiB (VmRSS), or NaN where /proc is missing. */
export function rssMiB(pid: number): number {
  try {
    const match = /^VmRSS:\s+(\d+) kB/m.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
    return match ? Number(match[1]) / 1024 : NaN;
  } catch {
    return NaN;
  }
}

export function percentile(sorted: readonly number[], p: number): number {
  if (sorted.length === 0) return NaN;
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))];
}

interface LoadResult {
  readonly ok: number;
  readonly busy503: number;
  readonly busy429: number;
  readonly other: number;
  readonly latencies: number[];
  readonly seconds: number;
}

/** `clients` loops POSTing `body` for `seconds`; a busy reply makes that client wait its Retry-After. */
async function load(url: string, body: Uint8Array<ArrayBuffer>, clients: number, seconds: number): Promise<LoadResult> {
  const end = performance.now() + seconds * 1000;
  const result = { ok: 0, busy503: 0, busy429: 0, other: 0, latencies: [] as number[] };
  const client = async (): Promise<void> => {
    while (performance.now() < end) {
      const t0 = performance.now();
      const res = await fetch(url, { method: 'POST', body });
      await res.arrayBuffer();
      if (res.status === 200) {
        result.ok++;
        result.latencies.push(performance.now() - t0);
      } else if (res.status === 503 || res.status === 429) {
        result[res.status === 503 ? 'busy503' : 'busy429']++;
        await sleep(Math.min(Number(res.headers.get('retry-after') ?? 1) * 1000, Math.max(0, end - performance.now())));
      } else {
        result.other++;
      }
    }
  };
  const t0 = performance.now();
  await Promise.all(Array.from({ length: clients }, client));
  result.latencies.sort((a, b) => a - b);
  return { ...result, seconds: (performance.now() - t0) / 1000 };
}

/** Decode, stylise and encode in this process, one after another, for `seconds`: images per second. */
async function directRate(model: string, jpeg: string, out: string, threads: number, seconds: number): Promise<number> {
  const style = await openStyleModel(model, { threads });
  const once = async () => writeImage(out, await stylizeImage(style, (await readImage(jpeg)).image));
  await once();
  let done = 0;
  const t0 = performance.now();
  while (performance.now() - t0 < seconds * 1000) {
    await once();
    done++;
  }
  return done / ((performance.now() - t0) / 1000);
}

export interface ServerBenchOptions {
  /** Store names of the networks to serve, with a label each. */
  readonly models: readonly { name: string; label: string }[];
  readonly jpeg: Uint8Array;
  readonly dir: string;
  readonly env: NodeJS.ProcessEnv;
  readonly threads: number;
  readonly clients: readonly number[];
  readonly seconds: number;
}

/** Prints the server throughput table. */
export async function benchServerStylize(options: ServerBenchOptions): Promise<void> {
  const jpegPath = join(options.dir, 'frame-640x480.jpg');
  await writeFile(jpegPath, options.jpeg);
  const body = new Uint8Array(options.jpeg);
  const server = await startServerChild(options.env);
  const rows: (string | number)[][] = [];
  let rssStart = NaN;
  try {
    rssStart = rssMiB(server.pid);
    for (const { name, label } of options.models) {
      const url = `${server.url}/api/stylize?model=${encodeURIComponent(name)}&format=jpeg`;
      const first = await fetch(url, { method: 'POST', body });
      await first.arrayBuffer();
      if (first.status !== 200) throw new Error(`bench: the server answered ${first.status} for ${name}`);
      const direct = await directRate(name, jpegPath, join(options.dir, 'direct.jpg'), options.threads, options.seconds);
      for (const clients of options.clients) {
        const before = rssMiB(server.pid);
        const r = await load(url, body, clients, options.seconds);
        const rate = r.ok / r.seconds;
        rows.push([label, clients, rate.toFixed(2), direct.toFixed(2), (rate / direct).toFixed(2),
          percentile(r.latencies, 50).toFixed(0), percentile(r.latencies, 95).toFixed(0),
          `${r.busy503} / ${r.busy429}${r.other ? ` (+${r.other} other)` : ''}`, `${before.toFixed(0)} → ${rssMiB(server.pid).toFixed(0)}`]);
      }
    }
  } finally {
    await server.stop();
    await clearModelCache();
  }
  const { maxConcurrent, maxQueued, retryAfterSeconds } = server.limits;
  console.log(`\n## Web: server stylize, 640x480 JPEG in and out, ${options.seconds} s per row\n`);
  console.log(`Default limits: ${maxConcurrent} running + ${maxQueued} queued, then 503 with Retry-After ${retryAfterSeconds} s (clients wait it out).`);
  console.log(`Peer: the same decode + network + encode called in this process, one image after another, ${options.threads} threads. Server RSS at start ${rssStart.toFixed(0)} MiB.\n`);
  console.log(table(['network', 'clients', 'req/s', 'direct img/s', 'ratio', 'p50 ms', 'p95 ms', '503 / 429', 'server RSS MiB'], rows));
}
