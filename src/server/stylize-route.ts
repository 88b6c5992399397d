/**
 * `POST /api/stylize?model=&size=&strength=&colors=&format=`: image bytes in, the stylised image
 * out. The body is streamed to a temporary file (413 past the upload limit), decoded through the
 * image door (format sniffed from the content, pixel limit and memory budget checked from the
 * header), and run in one of a few slots (503 + Retry-After when they and their queue are full).
 */
import { randomUUID } from 'node:crypto';
import { readFile, rm } from 'node:fs/promises';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { join } from 'node:path';
import { readImage, writeImage } from '../image/codec.js';
import { COLOR_MODES, estimateStylizeMemory, stylizeImage, type StylizeOptions } from '../style/transfer.js';
import type { StyleModel } from '../style/model.js';
import { FileError, messageOf, throwIfAborted } from '../util/errors.js';
import { expectOneOf, parseInteger, parseNumber } from '../util/validate.js';
import { HttpError, receiveBody } from './http.js';
import type { ServerLimits, Slots } from './limits.js';
import { checkName } from './models-route.js';

/** Formats a reply can be written in, by query value, with the extension and media type. */
const FORMATS = {
  png: { ext: '.png', type: 'image/png' },
  jpeg: { ext: '.jpg', type: 'image/jpeg' },
  webp: { ext: '.webp', type: 'image/webp' },
  avif: { ext: '.avif', type: 'image/avif' },
  tiff: { ext: '.tiff', type: 'image/tiff' },
} as const;
type Format = keyof typeof FORMATS;

/** The reply's format for an input decoded by sharp as `decoder`: the same, or PNG for GIF. */
function formatFor(decoder: string): Format {
  if (decoder === 'heif') return 'avif';
  return decoder in FORMATS ? (decoder as Format) : 'png';
}

export interface StylizeQuery {
  readonly model: string;
  readonly options: Pick<StylizeOptions, 'size' | 'strength' | 'preserveColors'>;
  /** Requested reply format; undefined: the input's. */
  readonly format?: Format;
}

/**
 * Reads and checks the query, before any of the body is read.
 * @throws HttpError 400 with the validator's message ("Expected a number between 0 and 1 for strength…").
 */
export function parseStylizeQuery(params: URLSearchParams): StylizeQuery {
  const value = (name: string): string | undefined => params.get(name) ?? undefined;
  try {
    const model = value('model');
    if (model === undefined || model === '') throw new TypeError("Expected a model name for model but received nothing (add ?model=<name>; GET /api/models lists them)");
    const size = value('size');
    const strength = value('strength');
    const colors = value('colors');
    const format = value('format');
    return {
      model: checkName(model),
      options: {
        size: size === undefined ? undefined : parseInteger('size', size, 8, 65536),
        strength: strength === undefined ? undefined : parseNumber('strength', strength, 0, 1),
        preserveColors: colors === undefined || colors === 'off' ? undefined : expectOneOf('colors', colors, COLOR_MODES),
      },
      format: format === undefined ? undefined : expectOneOf('format', format, Object.keys(FORMATS) as Format[]),
    };
  } catch (error) {
    throw error instanceof HttpError ? error : new HttpError(400, messageOf(error));
  }
}

/**
 * The image door's refusal as an HTTP status, with the server's temporary path replaced by
 * 'upload': 415 for what is not an image we read, 413 for over the pixel or memory limit, 400 for
 * a damaged or empty file.
 */
export function uploadError(error: FileError): HttpError {
  const problem = error.message.slice(error.path.length + 2);
  const message = `upload: ${problem}`;
  if (/not a supported image|audio file/.test(problem)) return new HttpError(415, message);
  if (/over the limit|over the memory budget/.test(problem)) return new HttpError(413, message);
  return new HttpError(400, message);
}

export interface StylizeContext {
  readonly limits: ServerLimits;
  readonly slots: Slots;
  /** Folder for this server's temporary files. */
  readonly dir: string;
  readonly openModel: (name: string) => Promise<StyleModel>;
}

/** Handles one stylize request; `signal` fires when the client goes away, the request times out or the server stops. */
export async function stylizeRoute(req: IncomingMessage, res: ServerResponse, url: URL, context: StylizeContext, signal: AbortSignal): Promise<void> {
  const query = parseStylizeQuery(url.searchParams);
  const { limits } = context;
  const style = await context.openModel(query.model);
  const release = await context.slots.acquire(signal);
  const id = randomUUID();
  const upload = join(context.dir, `stylize-${id}`);
  let output: string | undefined;
  try {
    await receiveBody(req, upload, limits.maxUploadBytes, signal);
    throwIfAborted(signal);
    const advice = 'send a smaller image or ask for a smaller ?size=';
    const decoded = await readImage(upload, {
      keepAlpha: true, size: query.options.size, maxPixels: limits.maxPixels, maxMemory: limits.maxMemory,
      memory: { bytesFor: (width, height) => estimateStylizeMemory(width, height), advice },
    }).catch((error: unknown) => {
      throw error instanceof FileError && error.path === upload ? uploadError(error) : error;
    });
    await rm(upload, { force: true });
    const image = await stylizeImage(style, decoded.image, { ...query.options, size: undefined, signal, maxMemory: limits.maxMemory });
    throwIfAborted(signal);
    const format = FORMATS[query.format ?? formatFor(decoded.format)];
    output = join(context.dir, `stylized-${id}${format.ext}`);
    await writeImage(output, image, { alpha: decoded.alpha });
    const bytes = await readFile(output);
    // Removed before the reply, so a client that got its image finds nothing of it left behind.
    await rm(output, { force: true });
    throwIfAborted(signal);
    res.writeHead(200, { 'Content-Type': format.type, 'Content-Length': bytes.length, 'Cache-Control': 'no-store', 'X-Image-Size': `${image.width}x${image.height}` });
    res.end(bytes);
  } finally {
    release();
    await rm(upload, { force: true });
    if (output !== undefined) await rm(output, { force: true });
  }
}
