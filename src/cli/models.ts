/** `pastiche models`: import, list, remove, export and quantise style models in the model store. */
import { Command } from 'commander';
import { defaultThreads } from '../runtime/index.js';
import { QUANTIZE_DEFAULTS, quantizeStoredModel } from '../style/quantize-stored.js';
import { parseInteger } from '../util/validate.js';
import { exportModel, importModel, listModels, removeModel, storeDir } from '../weights/store.js';
import { addRuntimeOptions, report } from './common.js';
import { writeStylesSheet, type StylesSheetFlags } from './styles.js';

function formatBytes(n: number): string {
  return n >= 1 << 20 ? `${(n / (1 << 20)).toFixed(1)} MiB` : `${(n / 1024).toFixed(0)} KiB`;
}

export function modelsCommand(): Command {
  const models = new Command('models').description(`Manage the model store (${storeDir()}; set PASTICHE_HOME to move it) beside the built-in styles shipped with pastiche`);

  models.command('import')
    .description('Add a style model: a lengstrom/ml5 checkpoint folder (manifest.json + variables) or an .onnx file (fixed-size inputs are made size-independent)')
    .argument('<source>', 'checkpoint folder or .onnx file')
    .option('--name <name>', 'name in the store (default: the source file or folder name)')
    .option('--description <text>', 'a line describing the style (default: where it came from)')
    .option('--force', 'replace a model of the same name', false)
    .option('--json', 'print the result as JSON on stdout', false)
    .action(async (source: string, flags: { name?: string; description?: string; force: boolean; json: boolean }) => {
      const model = await importModel(source, flags);
      report(flags.json, model, `imported ${model.name} (${model.architecture}, ${formatBytes(model.bytes)}) → ${model.path}`);
    });

  addRuntimeOptions(models.command('list')
    .description('List the models in the store and the built-in styles shipped with pastiche (marked built-in; a stored model of the same name hides one)')
    .option('--json', 'print the list as JSON on stdout', false)
    .option('--preview <file>', 'also write a contact sheet of the sample photo in every style (as `pastiche styles -o <file>`)'))
    .action(async (flags: StylesSheetFlags & { json: boolean; preview?: string }) => {
      if (flags.preview !== undefined) await writeStylesSheet(flags.preview, { ...flags, json: false });
      const list = await listModels();
      if (flags.json) {
        process.stdout.write(`${JSON.stringify(list, null, 2)}\n`);
        return;
      }
      if (list.length === 0) {
        process.stdout.write(`No models in ${storeDir()} yet and no built-in styles: add one with \`pastiche models import <checkpoint-or-onnx>\`\n`);
        return;
      }
      const width = Math.max(...list.map((m) => m.name.length));
      // int8 models are marked after their architecture: same style, another speed and size.
      const kind = (m: (typeof list)[number]): string => (m.precision === 'int8' ? `${m.architecture} int8` : m.architecture);
      const kindWidth = Math.max(16, ...list.map((m) => kind(m).length));
      for (const m of list) {
        process.stdout.write(`${m.name.padEnd(width)}  ${kind(m).padEnd(kindWidth)} ${formatBytes(m.bytes).padStart(9)}  ${m.builtin ? 'built-in' : 'stored  '}  ${m.description}\n`);
      }
    });

  models.command('quantize')
    .description('Store an int8 copy of a model (QLinearConv: uint8 activations, int8 per-channel weights; faster on CPUs with VNNI, a quarter of the size), calibrated on photos and checked against the float model (PSNR printed and recorded)')
    .argument('<name>', 'a model store name (or an .onnx file or checkpoint folder)')
    .option('--as <new>', 'name of the int8 model (default: <name>-int8)')
    .option('--calibration <folder>', 'photos like the ones it will stylise (default: a built-in synthetic set)')
    .option('--photos <n>', `how many photos to use; a quarter of them (at least one) are held out to measure the PSNR (default: ${QUANTIZE_DEFAULTS.photos})`)
    .option('--threads <n>', `CPU threads for the calibration runs (default: every available core, ${defaultThreads()} here)`)
    .option('--force', 'replace a model of the new name', false)
    .option('--json', 'print the result as JSON on stdout', false)
    .action(async (name: string, flags: { as?: string; calibration?: string; photos?: string; threads?: string; force: boolean; json: boolean }) => {
      const result = await quantizeStoredModel(name, {
        as: flags.as,
        calibration: flags.calibration,
        photos: flags.photos === undefined ? undefined : parseInteger('--photos', flags.photos, 1, 1000),
        threads: flags.threads === undefined ? undefined : parseInteger('--threads', flags.threads, 1, 256),
        force: flags.force,
      });
      const dbs = result.psnr.map((p) => p.db);
      const where = `${result.heldOut ? 'held-out' : 'calibration'} photo${dbs.length === 1 ? '' : 's'} (${result.photoSet})`;
      report(flags.json, result, `quantized ${result.source} → ${result.model.name} (${result.model.architecture} int8, ${formatBytes(result.model.bytes)}), ` +
        `calibrated on ${result.calibrated} photo${result.calibrated === 1 ? '' : 's'}; PSNR vs fp32 on ${dbs.length} ${where}: ` +
        `min ${Math.min(...dbs).toFixed(1)} dB, mean ${(dbs.reduce((a, b) => a + b, 0) / dbs.length).toFixed(1)} dB → ${result.model.path}`);
    });

  models.command('remove')
    .description('Delete a model from the store')
    .argument('<name>')
    .action(async (name: string) => {
      await removeModel(name);
      process.stderr.write(`removed ${name}\n`);
    });

  models.command('export')
    .description('Write a stored model as a standalone .onnx file (input "image" [N,3,H,W] RGB 0..255, output "stylized")')
    .argument('<name>')
    .argument('<file>', 'destination .onnx path')
    .option('--fp16', 'store the weights as float16 (half the file; computed in float32, within ~50 dB of the original)', false)
    .action(async (name: string, file: string, flags: { fp16: boolean }) => {
      await exportModel(name, file, { half: flags.fp16 });
      process.stderr.write(`exported ${name}${flags.fp16 ? ' (float16 weights)' : ''} → ${file}\n`);
    });
  return models;
}
