/** `pastiche models`: import, list, remove and export style models in the model store. */
import { Command } from 'commander';
import { exportModel, importModel, listModels, removeModel, storeDir } from '../weights/store.js';
import { report } from './common.js';

function formatBytes(n: number): string {
  return n >= 1 << 20 ? `${(n / (1 << 20)).toFixed(1)} MiB` : `${(n / 1024).toFixed(0)} KiB`;
}

export function modelsCommand(): Command {
  const models = new Command('models').description(`Manage the model store (${storeDir()}; set PASTICHE_HOME to move it)`);

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

  models.command('list')
    .description('List the models in the store')
    .option('--json', 'print the list as JSON on stdout', false)
    .action(async (flags: { json: boolean }) => {
      const list = await listModels();
      if (flags.json) {
        process.stdout.write(`${JSON.stringify(list, null, 2)}\n`);
        return;
      }
      if (list.length === 0) {
        process.stdout.write(`No models in ${storeDir()} yet: add one with \`pastiche models import <checkpoint-or-onnx>\`\n`);
        return;
      }
      const width = Math.max(...list.map((m) => m.name.length));
      for (const m of list) process.stdout.write(`${m.name.padEnd(width)}  ${m.architecture.padEnd(16)} ${formatBytes(m.bytes).padStart(9)}  ${m.description}\n`);
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
    .action(async (name: string, file: string) => {
      await exportModel(name, file);
      process.stderr.write(`exported ${name} → ${file}\n`);
    });
  return models;
}
