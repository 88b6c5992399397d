/**
 * The styles overview (`pastiche styles`, `models list --preview`): one sample photo stylised by
 * every model, laid out as a contact sheet, so a user can pick a style by looking rather than by
 * reading names. The sheet has no text (see contact-sheet.ts); the caller prints its legend.
 */
import { fileURLToPath } from 'node:url';
import { contactSheet } from '../image/contact-sheet.js';
import { readImage } from '../image/codec.js';
import type { RgbImage } from '../image/types.js';
import type { RuntimeOptions } from '../runtime/index.js';
import { throwIfAborted } from '../util/errors.js';
import { expectInteger } from '../util/validate.js';
import { openStyleModel } from './model.js';
import { stylizeImage } from './transfer.js';

/** The photo shipped with pastiche (Kodak suite, image 23: two parrots; credits in examples/CREDITS.md). */
export const SAMPLE_PHOTO = fileURLToPath(new URL('../../examples/kodim23.jpg', import.meta.url));

export interface StylesSheetOptions {
  /** Model names or files, in sheet order (the sample photo itself comes first). */
  readonly models: readonly string[];
  /** Photo to stylise (default {@link SAMPLE_PHOTO}). */
  readonly sample?: string;
  /** Longer side the sample is stylised at, and each cell's side (default 384). */
  readonly size?: number;
  /** Cells per row (default 4). */
  readonly columns?: number;
  readonly runtime?: RuntimeOptions;
  readonly signal?: AbortSignal;
  /** Called after each model's cell is done. */
  readonly onModel?: (done: number, total: number, name: string) => void;
}

export const STYLES_SHEET_DEFAULTS = { size: 384, columns: 4 } as const;

/**
 * Stylises the sample with every model and returns the contact sheet: the sample first, then one
 * cell per model, `columns` to a row, left to right and top to bottom.
 * @throws RangeError when there are no models or an option is out of range; FileError naming the
 *   sample or a model that cannot be read.
 */
export async function stylesSheet(options: StylesSheetOptions): Promise<RgbImage> {
  if (options.models.length === 0) throw new RangeError('Expected at least one model for the styles sheet but received none');
  const size = expectInteger('size', options.size ?? STYLES_SHEET_DEFAULTS.size, 16, 4096);
  const columns = expectInteger('columns', options.columns ?? STYLES_SHEET_DEFAULTS.columns, 1, 64);
  const { image: sample } = await readImage(options.sample ?? SAMPLE_PHOTO, { size });
  const cells: RgbImage[] = [sample];
  for (const [i, name] of options.models.entries()) {
    throwIfAborted(options.signal);
    // Sessions stay in the runtime's cache (a later --model of the same style reuses them).
    const style = await openStyleModel(name, options.runtime);
    cells.push(await stylizeImage(style, sample, { signal: options.signal }));
    options.onModel?.(i + 1, options.models.length, name);
  }
  const rows: RgbImage[][] = [];
  for (let i = 0; i < cells.length; i += columns) rows.push(cells.slice(i, i + columns));
  return contactSheet(rows, { cell: size });
}
