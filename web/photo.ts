/**
 * Photos: an image dropped or chosen, stylised in the browser at its full size with Node's
 * margin for the network (so the result matches `pastiche stylize`), or by the server (POST /api/stylize) when it
 * is too large for a tab; the result downloads as a full-resolution PNG.
 */
import { apiFetch, fetchModel } from './api.js';
import { inputBuffer, packFrame, planFrame, unpackOutput, type OutputOptions } from './pixels.js';
import { messageOf, StyleSession, type Backend } from './runtime.js';

/**
 * Larger photos go to the server: a network's activations at 4 MP run to gigabytes, more than a
 * tab's WASM heap (4 GiB at most) or a GPU buffer comfortably holds; the server tiles them.
 */
export const BROWSER_MAX_PIXELS = 2_500_000;

export interface PhotoSettings {
  readonly model: string;
  readonly backend: Backend;
  readonly options: OutputOptions;
  /** The reflected border around the photo while it runs: {@link photoMargin} of the network. */
  readonly margin: number;
  /** Photos above this many pixels go to the server (default {@link BROWSER_MAX_PIXELS}). */
  readonly maxPixels?: number;
}

export class PhotoPanel {
  private session: { key: string; session: Promise<StyleSession> } | undefined;
  private result: { blob?: Blob; name: string } | undefined;
  private busy = Promise.resolve();

  constructor(
    private readonly canvas: HTMLCanvasElement,
    private readonly onStatus: (line: string, error?: boolean) => void,
    private readonly onResult: (ready: boolean) => void,
  ) {}

  /** Stylises `file`; one photo at a time (a second waits for the first). */
  stylize(file: Blob & { name?: string }, settings: PhotoSettings): Promise<void> {
    this.busy = this.busy.then(() => this.run(file, settings));
    return this.busy;
  }

  private async run(file: Blob & { name?: string }, settings: PhotoSettings): Promise<void> {
    this.onResult(false);
    const base = (file.name ?? 'photo').replace(/\.[^.]*$/, '');
    const name = `${base}-${settings.model}.png`;
    const started = performance.now();
    try {
      const bitmap = await createImageBitmap(file, { colorSpaceConversion: 'none', premultiplyAlpha: 'none' }).catch(() => {
        throw new Error(`${file.name ?? 'the file'} is not an image this browser can decode`);
      });
      const { width, height } = bitmap;
      const onServer = width * height > (settings.maxPixels ?? BROWSER_MAX_PIXELS);
      if (onServer) {
        bitmap.close();
        this.onStatus(`${width}x${height} is large: stylising on the server…`);
        await this.onServer(file, settings, name);
      } else {
        this.onStatus(`stylising ${width}x${height} on ${settings.backend}…`);
        await this.inBrowser(bitmap, settings);
        this.result = { name };
      }
      const where = onServer ? 'on the server' : `in the browser (${settings.backend})`;
      this.onStatus(`${width}x${height} stylised with ${settings.model} ${where} in ${((performance.now() - started) / 1000).toFixed(1)} s`);
      this.onResult(true);
    } catch (error) {
      this.onStatus(messageOf(error), true);
    }
  }

  private async inBrowser(bitmap: ImageBitmap, settings: PhotoSettings): Promise<void> {
    const { width, height } = bitmap;
    const source = new OffscreenCanvas(width, height).getContext('2d', { willReadFrequently: true })!;
    source.drawImage(bitmap, 0, 0);
    bitmap.close();
    const pixels = source.getImageData(0, 0, width, height);
    const plan = planFrame(width, height, settings.margin);
    const buffers = { input: inputBuffer(plan), output: inputBuffer(plan) };
    packFrame(pixels.data, plan, buffers.input);
    await (await this.sessionFor(settings)).run(buffers, plan.paddedWidth, plan.paddedHeight);
    const image = new ImageData(width, height);
    unpackOutput(buffers.output, plan, pixels.data, settings.options, image.data);
    this.canvas.width = width;
    this.canvas.height = height;
    this.canvas.getContext('2d')!.putImageData(image, 0, 0);
  }

  private async onServer(file: Blob, settings: PhotoSettings, name: string): Promise<void> {
    const query = new URLSearchParams({ model: settings.model, format: 'png', strength: String(settings.options.strength) });
    if (settings.options.preserveColors) query.set('colors', 'luminance');
    const res = await apiFetch(`/api/stylize?${query}`, { method: 'POST', body: file });
    const blob = await res.blob();
    const bitmap = await createImageBitmap(blob);
    this.canvas.width = bitmap.width;
    this.canvas.height = bitmap.height;
    this.canvas.getContext('2d')!.drawImage(bitmap, 0, 0);
    bitmap.close();
    this.result = { blob, name };
  }

  /** One session for photos, reopened when the model or backend changes. */
  private async sessionFor(settings: PhotoSettings): Promise<StyleSession> {
    const key = `${settings.model}@${settings.backend}`;
    if (this.session?.key !== key) {
      const previous = this.session;
      this.session = { key, session: fetchModel(settings.model).then((bytes) => StyleSession.create(bytes, settings.backend)) };
      this.session.session.catch(() => (this.session = undefined));
      void previous?.session.then((s) => s.release()).catch(() => undefined);
    }
    return this.session.session;
  }

  /** Saves the result as a PNG at full resolution. */
  async download(): Promise<void> {
    if (this.result === undefined) return;
    const blob = this.result.blob ?? (await new Promise<Blob>((resolve, reject) => this.canvas.toBlob((b) => (b ? resolve(b) : reject(new Error('the canvas could not be encoded'))), 'image/png')));
    saveBlob(blob, this.result.name);
  }
}

/** Makes the browser download `blob` as `name`. */
export function saveBlob(blob: Blob, name: string): void {
  const url = URL.createObjectURL(blob);
  const link = document.createElement('a');
  link.href = url;
  link.download = name;
  document.body.append(link);
  link.click();
  link.remove();
  setTimeout(() => URL.revokeObjectURL(url), 10_000);
}
