/** What every command shares: runtime flags, Ctrl-C/SIGTERM/SIGHUP handling, output of results. */
import { Option, type Command } from 'commander';
import { EXECUTION_PROVIDERS, defaultThreads, type RuntimeOptions } from '../runtime/index.js';
import { removeTrackedTemps } from '../util/atomic.js';
import { parseInteger, parseNumber, expectOneOf } from '../util/validate.js';

/** Adds --threads and --execution-provider. */
export function addRuntimeOptions(command: Command): Command {
  return command
    .option('--threads <n>', `CPU threads per operation (default: every available core, ${defaultThreads()} here)`)
    .addOption(new Option('--execution-provider <name>', 'where the network runs; cuda/coreml/dml/webgpu only where this onnxruntime build has them')
      .choices([...EXECUTION_PROVIDERS]).default('cpu'));
}

export function runtimeOptions(opts: { threads?: string; executionProvider?: string }): RuntimeOptions {
  return {
    threads: opts.threads === undefined ? undefined : parseInteger('--threads', opts.threads, 1, 256),
    executionProvider: expectOneOf('--execution-provider', opts.executionProvider ?? 'cpu', EXECUTION_PROVIDERS),
  };
}

/** The signals that stop a run, with their numbers (exit code 128 + number, as shells report). */
const STOP_SIGNALS = { SIGHUP: 1, SIGINT: 2, SIGTERM: 15 } as const;
type StopSignal = keyof typeof STOP_SIGNALS;

let firstInterrupt: StopSignal | undefined;

/** The exit code for the signal that interrupted this run: 130 for SIGINT, 143 SIGTERM, 129 SIGHUP. */
export function interruptExitCode(): number {
  return 128 + STOP_SIGNALS[firstInterrupt ?? 'SIGINT'];
}

/**
 * An AbortSignal fired by the first Ctrl-C, SIGTERM or SIGHUP (work stops, temporary files are
 * removed); a second one removes the temporary files being written and exits at once.
 */
export function interruptSignal(): { signal: AbortSignal; dispose: () => void } {
  const controller = new AbortController();
  const onSignal = (name: StopSignal): void => {
    if (controller.signal.aborted) {
      removeTrackedTemps();
      process.exit(interruptExitCode());
    }
    firstInterrupt = name;
    // SIGTERM and SIGHUP come from a process manager or a closed terminal: nobody to press Ctrl-C.
    const hint = name === 'SIGINT' ? ' (Ctrl-C again to quit at once)' : '';
    process.stderr.write(`\nInterrupted${name === 'SIGINT' ? '' : ` by ${name}`}: stopping and cleaning up${hint}\n`);
    controller.abort();
  };
  const handlers = Object.keys(STOP_SIGNALS).map((name) => [name, () => onSignal(name as StopSignal)] as const);
  for (const [name, handler] of handlers) process.on(name, handler);
  return {
    signal: controller.signal,
    // Once interrupted the handlers stay: a second signal while the run winds down still means
    // "clean up and quit now" with the right exit code, not the default death by signal.
    dispose: () => {
      if (controller.signal.aborted) return;
      for (const [name, handler] of handlers) process.off(name, handler);
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
