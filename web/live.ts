/**
 * The live view: camera frame → padded input → network → cropped, blended output → canvas, as
 * fast as the backend allows, with every buffer allocated once per resolution. Any failure stops
 * the loop and paints the message over the canvas, so the picture never just freezes.
 */
import { fetchModel } from './api.js';
import { Camera } from './camera.js';
import { hook, type Capture } from './hook.js';
import { inputBuffer, packFrame, planFrame, unpackOutput, type OutputOptions } from './pixels.js';
import { hasWebGpu, messageOf, StyleSession, type Backend, type RunBuffers } from './runtime.js';

export interface LiveSettings {
  readonly model: string;
  readonly backend: Backend | 'auto';
  readonly width: number;
  readonly height: number;
  readonly margin: number;
}

/** Frames timed per backend when `auto` has both, after a warm-up run. */
const TIMED_RUNS = 4;
/**
 * A backend whose first run (shader compilation included) takes longer than this is not waited
 * for: software WebGPU adapters take many seconds per frame, and the camera would sit frozen.
 */
const WARM_UP_LIMIT_MS = 5000;

/**
 * Median ms of a run on `session`, or Infinity when its warm-up passes the limit; `idle` settles
 * when no run of it is left in flight (then it may be released).
 */
async function timeBackend(session: StyleSession, buffers: RunBuffers, width: number, height: number): Promise<{ ms: number; idle: Promise<unknown> }> {
  // The warm-up runs on copies: a run left behind keeps its buffers, and the frame's must stay here.
  const warmUp = session.run({ input: buffers.input.slice(), output: buffers.output.slice() }, width, height);
  let timer: ReturnType<typeof setTimeout> | undefined;
  const finished = await Promise.race([warmUp.then(() => true), new Promise<false>((resolve) => (timer = setTimeout(() => resolve(false), WARM_UP_LIMIT_MS)))]);
  clearTimeout(timer);
  const idle = warmUp.catch(() => undefined);
  if (!finished) return { ms: Infinity, idle };
  const times: number[] = [];
  for (let i = 0; i < TIMED_RUNS; i++) {
    const start = performance.now();
    await session.run(buffers, width, height);
    times.push(performance.now() - start);
  }
  return { ms: times.sort((a, b) => a - b)[Math.floor(times.length / 2)], idle };
}

const nextPaint = (): Promise<void> => new Promise((resolve) => requestAnimationFrame(() => resolve()));

export class LiveView {
  /** Output controls, read every frame. */
  options: OutputOptions = { strength: 1, preserveColors: false };
  private readonly context: CanvasRenderingContext2D;
  private generation = 0;
  private stopped: Promise<void> = Promise.resolve();
  private captures: ((capture: Capture) => void)[] = [];

  /** `onStatus` gets a line for the page after each change (backend chosen, timings, errors). */
  constructor(private readonly canvas: HTMLCanvasElement, private readonly onStatus: (line: string) => void) {
    this.context = canvas.getContext('2d')!;
    hook.capture = () => this.capture();
  }

  /** Stops whatever runs, then starts with `settings`; failures end in the error state, not a throw. */
  async start(settings: LiveSettings): Promise<void> {
    await this.stop();
    const generation = ++this.generation;
    Object.assign(hook, { state: 'loading', backend: null, frames: 0, fps: 0, runMs: 0, error: null });
    this.onStatus(`loading ${settings.model}…`);
    let camera: Camera | undefined;
    let session: StyleSession | undefined;
    let finished!: () => void;
    this.stopped = new Promise((resolve) => (finished = resolve));
    try {
      const model = await fetchModel(settings.model);
      camera = await Camera.open(settings.width, settings.height);
      const plan = planFrame(settings.width, settings.height, settings.margin);
      const buffers: RunBuffers = { input: inputBuffer(plan), output: inputBuffer(plan) };
      packFrame(camera.grab().data, plan, buffers.input);
      session = await this.chooseSession(model, settings.backend, buffers, plan.paddedWidth, plan.paddedHeight);
      if (generation !== this.generation) return;
      hook.backend = session.backend;
      this.canvas.width = settings.width;
      this.canvas.height = settings.height;
      const image = new ImageData(settings.width, settings.height);
      hook.state = 'running';
      let mark = performance.now();
      let marked = 0;
      while (generation === this.generation) {
        const frame = camera.grab();
        packFrame(frame.data, plan, buffers.input);
        const started = performance.now();
        await session.run(buffers, plan.paddedWidth, plan.paddedHeight);
        hook.runMs = performance.now() - started;
        if (generation !== this.generation) break;
        unpackOutput(buffers.output, plan, frame.data, this.options, image.data);
        this.context.putImageData(image, 0, 0);
        hook.frames++;
        const now = performance.now();
        if (now - mark >= 1000) {
          hook.fps = ((hook.frames - marked) * 1000) / (now - mark);
          [mark, marked] = [now, hook.frames];
        }
        if (this.captures.length > 0) this.resolveCaptures(frame, image, settings.margin, session.backend);
        await nextPaint();
      }
    } catch (error) {
      if (generation === this.generation) this.fail(messageOf(error));
    } finally {
      camera?.stop();
      await session?.release().catch(() => undefined);
      finished();
    }
  }

  /** Stops the loop and waits until its camera and session are released. */
  async stop(): Promise<void> {
    this.generation++;
    await this.stopped;
  }

  private async chooseSession(model: Uint8Array, wanted: Backend | 'auto', buffers: RunBuffers, width: number, height: number): Promise<StyleSession> {
    if (wanted !== 'auto') {
      const session = await StyleSession.create(model, wanted);
      this.onStatus(`backend: ${wanted} (asked for)`);
      return session;
    }
    if (!(await hasWebGpu())) {
      this.onStatus('backend: wasm (no WebGPU adapter in this browser)');
      return StyleSession.create(model, 'wasm');
    }
    // Both exist: WebGPU is not always faster (software adapters, small networks), so time them.
    const timed: { session: StyleSession; ms: number; idle: Promise<unknown> }[] = [];
    const failures: string[] = [];
    for (const backend of ['wasm', 'webgpu'] as const) {
      try {
        const session = await StyleSession.create(model, backend);
        timed.push({ session, ...(await timeBackend(session, buffers, width, height)) });
      } catch (error) {
        failures.push(messageOf(error));
      }
    }
    if (timed.length === 0) throw new Error(failures.join('; '));
    timed.sort((a, b) => a.ms - b.ms);
    await timed[0].idle;
    for (const loser of timed.slice(1)) void loser.idle.then(() => loser.session.release()).catch(() => undefined);
    const times = timed.map((t) => `${t.session.backend} ${Number.isFinite(t.ms) ? `${t.ms.toFixed(1)} ms` : `over ${WARM_UP_LIMIT_MS / 1000} s to start`}`).join(', ');
    this.onStatus(`backend: ${timed[0].session.backend} (measured ${times}${failures.length ? `; ${failures.join('; ')}` : ''})`);
    return timed[0].session;
  }

  private fail(message: string): void {
    Object.assign(hook, { state: 'error', error: message, fps: 0 });
    this.onStatus(`error: ${message}`);
    const { width, height } = this.canvas;
    const c = this.context;
    c.fillStyle = 'rgba(40, 0, 0, 0.85)';
    c.fillRect(0, 0, width, height);
    c.fillStyle = '#fff';
    c.font = '14px sans-serif';
    wrap(message, Math.max(60, width - 20)).forEach((line, i) => c.fillText(line, 10, 24 + i * 18));
  }

  private capture(): Promise<Capture> {
    if (hook.state !== 'running') return Promise.reject(new Error(`the live view is not running (state: ${hook.state}${hook.error ? `, ${hook.error}` : ''})`));
    return new Promise((resolve) => this.captures.push(resolve));
  }

  private resolveCaptures(frame: ImageData, drawn: ImageData, margin: number, backend: Backend): void {
    const rgb = (rgba: Uint8ClampedArray) => {
      const out = new Array<number>((rgba.length / 4) * 3);
      for (let i = 0, j = 0; i < rgba.length; i += 4, j += 3) [out[j], out[j + 1], out[j + 2]] = [rgba[i], rgba[i + 1], rgba[i + 2]];
      return out;
    };
    const capture = { width: frame.width, height: frame.height, input: rgb(frame.data), output: rgb(drawn.data), margin, backend };
    for (const resolve of this.captures.splice(0)) resolve(capture);
  }
}

/** Splits a message into lines of about `width` pixels at 14px (~7px a character). */
function wrap(text: string, width: number): string[] {
  const perLine = Math.floor(width / 7);
  const lines: string[] = [];
  let line = '';
  for (const word of text.split(' ')) {
    if (line !== '' && line.length + word.length + 1 > perLine) {
      lines.push(line);
      line = '';
    }
    line = line === '' ? word : `${line} ${word}`;
  }
  return [...lines, line];
}
