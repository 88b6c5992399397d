/**
 * The live view: camera frame → padded input → network → cropped, blended output → canvas, as
 * fast as the backend allows, with every buffer allocated once per resolution. Any failure stops
 * the loop and paints the message over the canvas, so the picture never just freezes.
 */
import { fetchModel } from './api.js';
import { Camera } from './camera.js';
import { hook, type Capture } from './hook.js';
import { inputBuffer, packFrame, planFrame, unpackOutput, type OutputOptions } from './pixels.js';
import { messageOf, webGpuAdapter, stopBackend, StyleSession, type Backend, type RunBuffers } from './runtime.js';

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
 * WebGPU gets this long to open the model and run its first frame (shader compilation included)
 * when `auto` measures: a software adapter takes many seconds per frame, and the camera would wait.
 */
const WEBGPU_TRIAL_LIMIT_MS = 5000;

/** Opens `model` on `backend` and returns the median ms of a few runs, on copies of the frame's buffers. */
async function trial(model: Uint8Array, backend: Backend, buffers: RunBuffers, width: number, height: number): Promise<{ session: StyleSession; ms: number }> {
  const session = await StyleSession.create(model, backend);
  const own = { input: buffers.input.slice(), output: buffers.output.slice() };
  await session.run(own, width, height); // warm-up
  const times: number[] = [];
  for (let i = 0; i < TIMED_RUNS; i++) {
    const start = performance.now();
    await session.run(own, width, height);
    times.push(performance.now() - start);
  }
  return { session, ms: times.sort((a, b) => a - b)[Math.floor(times.length / 2)] };
}

/** One frame's trip: its buffers, the camera frame they were packed from, and its run in the worker. */
interface Slot {
  readonly buffers: RunBuffers;
  frame: ImageData | undefined;
  run: Promise<number> | undefined;
}

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
      // Two frames in flight: while the worker runs one, the page grabs and packs the next and
      // draws the previous, so the page's own work hides behind the network's.
      const slots: Slot[] = [0, 1].map(() => ({ buffers: { input: inputBuffer(plan), output: inputBuffer(plan) }, frame: undefined, run: undefined }));
      packFrame(camera.grab().data, plan, slots[0].buffers.input);
      session = await this.chooseSession(model, settings.backend, slots[0].buffers, plan.paddedWidth, plan.paddedHeight);
      if (generation !== this.generation) return;
      const running = session;
      hook.backend = session.backend;
      this.canvas.width = settings.width;
      this.canvas.height = settings.height;
      const image = new ImageData(settings.width, settings.height);
      const start = (slot: Slot) => {
        slot.frame = camera!.grab();
        packFrame(slot.frame.data, plan, slot.buffers.input);
        slot.run = running.run(slot.buffers, plan.paddedWidth, plan.paddedHeight);
        slot.run.catch(() => undefined); // awaited below; a run left behind when stopping must not be "unhandled"
      };
      hook.state = 'running';
      let mark = performance.now();
      let marked = 0;
      start(slots[0]);
      for (let i = 0; generation === this.generation; i++) {
        const current = slots[i % 2];
        start(slots[(i + 1) % 2]);
        hook.runMs = await current.run!;
        if (generation !== this.generation) break;
        unpackOutput(current.buffers.output, plan, current.frame!.data, this.options, image.data);
        this.context.putImageData(image, 0, 0);
        hook.frames++;
        const now = performance.now();
        if (now - mark >= 1000) {
          hook.fps = ((hook.frames - marked) * 1000) / (now - mark);
          [mark, marked] = [now, hook.frames];
        }
        if (this.captures.length > 0) this.resolveCaptures(current.frame!, image, settings.margin, session.backend);
      }
      // The other frame's run is still queued in the worker; the session is released after it.
      await Promise.all(slots.map((slot) => slot.run?.catch(() => undefined)));
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
    const adapter = await webGpuAdapter();
    if (adapter === null || adapter.software) {
      // A software adapter (SwiftShader, llvmpipe) is many times slower than WASM, and trying it
      // keeps the CPU busy compiling shaders long after it is given up: not worth a trial.
      this.onStatus(`backend: wasm (${adapter === null ? 'no WebGPU adapter in this browser' : `the WebGPU adapter is software, ${adapter.name}: not timed`})`);
      return StyleSession.create(model, 'wasm');
    }
    // Both exist: WebGPU is not always faster (software adapters, small networks), so time them.
    // WASM is the fallback and is always waited for; WebGPU only for a while, then stopped.
    const wasm = await trial(model, 'wasm', buffers, width, height);
    let timer: ReturnType<typeof setTimeout> | undefined;
    const tooSlow = new Promise<'too slow'>((resolve) => (timer = setTimeout(() => resolve('too slow'), WEBGPU_TRIAL_LIMIT_MS)));
    const webgpu = await Promise.race([trial(model, 'webgpu', buffers, width, height), tooSlow]).catch((error: unknown) => messageOf(error));
    clearTimeout(timer);
    let note: string;
    if (webgpu === 'too slow') {
      stopBackend('webgpu', `WebGPU took over ${WEBGPU_TRIAL_LIMIT_MS / 1000} s for its first frame`);
      note = `webgpu over ${WEBGPU_TRIAL_LIMIT_MS / 1000} s for its first frame`;
    } else if (typeof webgpu === 'string') {
      note = webgpu;
    } else {
      note = `webgpu ${webgpu.ms.toFixed(1)} ms`;
      if (webgpu.ms < wasm.ms) {
        await wasm.session.release();
        this.onStatus(`backend: webgpu (measured wasm ${wasm.ms.toFixed(1)} ms, ${note})`);
        return webgpu.session;
      }
      await webgpu.session.release();
    }
    this.onStatus(`backend: wasm (measured wasm ${wasm.ms.toFixed(1)} ms, ${note})`);
    return wasm.session;
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
