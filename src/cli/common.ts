/** What every command shares: runtime flags, Ctrl-C handling, output of results. */
import { Option, type Command } from 'commander';
import { EXECUTION_PROVIDERS, type RuntimeOptions } from '../runtime/index.js';
import { parseInteger, parseNumber, expectOneOf } from '../util/validate.js';

/** Adds --threads and --execution-provider. */
export function addRuntimeOptions(command: Command): Command {
  return command
    .option('--threads <n>', 'CPU threads per operation (default: one per physical core)')
    .addOption(new Option('--execution-provider <name>', 'where the network runs; cuda/coreml/dml/webgpu only where this onnxruntime build has them')
      .choices([...EXECUTION_PROVIDERS]).default('cpu'));
}

export function runtimeOptions(opts: { threads?: string; executionProvider?: string }): RuntimeOptions {
  return {
    threads: opts.threads === undefined ? undefined : parseInteger('--threads', opts.threads, 1, 256),
    executionProvider: expectOneOf('--execution-provider', opts.executionProvider ?? 'cpu', EXECUTION_PROVIDERS),
  };
}

/**
 * An AbortSignal fired by the first Ctrl-C (work stops, temporary files are removed); a second
 * Ctrl-C exits at once.
 */
export function interruptSignal(): { signal: AbortSignal; dispose: () => void } {
  const controller = new AbortController();
  const onInt = (): void => {
    if (controller.signal.aborted) process.exit(130);
    process.stderr.write('\nInterrupted: stopping and cleaning up (Ctrl-C again to quit at once)\n');
    controller.abort();
  };
  process.on('SIGINT', onInt);
  process.on('SIGTERM', onInt);
  return {
    signal: controller.signal,
    dispose: () => {
      process.off('SIGINT', onInt);
      process.off('SIGTERM', onInt);
    },
  };
}

/** Prints a result: JSON on stdout with --json, otherwise a human line on stderr. */
export function report(json: boolean, result: unknown, human: string): void {
  if (json) process.stdout.write(`${JSON.stringify(result, null, 2)}\n`);
  else process.stderr.write(`${human}\n`);
}

export interface StyleArg {
  path: string;
  weight: number;
  mask?: string;
}

/**
 * `--style PATH[:WEIGHT]`, in the order given (a Windows drive letter is not a weight). A signed
 * weight is read as a weight, so that `a.jpg:-1` is refused as negative, not looked up as a file.
 */
export function collectStyle(value: string, previous: StyleArg[] = []): StyleArg[] {
  const match = /^(.*?):([-+]?\d*\.?\d+(?:e[-+]?\d+)?)$/i.exec(value);
  const [path, weight] = match && !/^[a-z]$/i.test(match[1]) ? [match[1], parseNumber(`the --style weight of ${match[1]}`, match[2], 0)] : [value, 1];
  return [...previous, { path, weight }];
}

/** A comma-separated flag value as a list. */
export function list(text: string | undefined): string[] | undefined {
  return text === undefined ? undefined : text.split(',').map((s) => s.trim()).filter(Boolean);
}

/** Loss flags that `optimize` and `train` share, as commander hands them over. */
export interface LossFlags {
  learningRate?: string;
  contentWeight?: string;
  styleWeight?: string;
  tvWeight?: string;
  contentLayers?: string;
  styleLayers?: string;
  styleLayerWeights?: string;
}
