/** `pastiche styles`: one sheet showing the sample photo in every style (built-in and stored). */
import { Command } from 'commander';
import { resolve } from 'node:path';
import { checkImageOutput } from '../image/output.js';
import { writeImage } from '../image/codec.js';
import { SAMPLE_PHOTO, STYLES_SHEET_DEFAULTS, stylesSheet } from '../style/styles-sheet.js';
import { parseInteger } from '../util/validate.js';
import { listModels } from '../weights/store.js';
import { addRuntimeOptions, interruptSignal, report, runtimeOptions } from './common.js';
import { createProgressBar } from './progress.js';

export interface StylesSheetFlags {
  readonly sample?: string;
  readonly size?: string;
  readonly columns?: string;
  readonly all?: boolean;
  readonly threads?: string;
  readonly executionProvider?: string;
  readonly json?: boolean;
}

/**
 * Writes the styles sheet to `output` and prints its legend (which cell is which model). Shared by
 * `pastiche styles` and `pastiche models list --preview`.
 */
export async function writeStylesSheet(output: string, flags: StylesSheetFlags): Promise<void> {
  const sample = flags.sample ?? SAMPLE_PHOTO;
  await checkImageOutput(output, [sample]);
  const readable = (await listModels()).filter((m) => m.architecture !== 'unreadable');
  // int8 copies look like their source: one cell per style unless --all.
  const models = (flags.all ? readable : readable.filter((m) => m.precision !== 'int8')).map((m) => m.name);
  if (models.length === 0) throw new Error('No models to show: the store is empty and no built-in styles were found');
  const columns = flags.columns === undefined ? STYLES_SHEET_DEFAULTS.columns : parseInteger('--columns', flags.columns, 1, 64);
  const bar = createProgressBar('styles', 'models');
  const { signal, dispose } = interruptSignal();
  try {
    const sheet = await stylesSheet({
      models, sample, columns, signal,
      size: flags.size === undefined ? undefined : parseInteger('--size', flags.size, 16, 4096),
      runtime: runtimeOptions(flags),
      onModel: (done, total, name) => bar.update(done, total, name),
    });
    bar.done();
    await writeImage(output, sheet);
  } finally {
    dispose();
  }
  const cells = ['(the sample photo)', ...models];
  const legend = cells.map((name, i) => `row ${Math.floor(i / columns) + 1}, column ${(i % columns) + 1}: ${name}`);
  report(Boolean(flags.json), { output: resolve(output), sample: resolve(sample), columns, cells },
    `wrote ${output}: ${models.length} style${models.length === 1 ? '' : 's'} on ${sample}\n${legend.join('\n')}`);
}

export function stylesCommand(): Command {
  const command = new Command('styles')
    .description('Write a contact sheet of the sample photo in every style (built-in and stored), to choose one by looking')
    .option('-o, --output <file>', 'the sheet (PNG, JPEG or WebP)', 'styles.png')
    .option('--sample <photo>', `photo to stylise (default: the shipped sample, ${SAMPLE_PHOTO})`)
    .option('--size <px>', `longer side of each cell (default: ${STYLES_SHEET_DEFAULTS.size})`)
    .option('--columns <n>', `cells per row (default: ${STYLES_SHEET_DEFAULTS.columns})`)
    .option('--all', 'include int8 copies of styles as well (default: one cell per style)', false)
    .option('--json', 'print the legend as JSON on stdout', false);
  return addRuntimeOptions(command).action(async (flags: StylesSheetFlags & { output: string }) => writeStylesSheet(flags.output, flags));
}
