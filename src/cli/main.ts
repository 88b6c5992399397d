/** The `pastiche` command line: one file per command, this one only wires them up. */
import { Command, CommanderError } from 'commander';
import { AbortError, messageOf } from '../util/errors.js';
import { interruptExitCode } from './common.js';
import { liveCommand } from './live.js';
import { modelsCommand } from './models.js';
import { optimizeCommand } from './optimize.js';
import { serveCommand } from './serve.js';
import { stylesCommand } from './styles.js';
import { stylizeCommand } from './stylize.js';
import { trainCommand } from './train.js';

export function program(): Command {
  const program = new Command('pastiche')
    .description('Neural style transfer: repaint photos and videos in the style of a painting')
    .version('0.1.0')
    .showHelpAfterError('(run with --help for usage)')
    .exitOverride();
  program.addCommand(stylizeCommand());
  program.addCommand(liveCommand());
  program.addCommand(optimizeCommand());
  program.addCommand(trainCommand());
  program.addCommand(modelsCommand());
  program.addCommand(stylesCommand());
  program.addCommand(serveCommand());
  for (const command of program.commands) {
    command.exitOverride().showHelpAfterError('(run with --help for usage)');
    for (const sub of command.commands) sub.exitOverride().showHelpAfterError('(run with --help for usage)');
  }
  return program;
}

/**
 * Runs the CLI; resolves to the exit code (0 ok, 1 failure, 2 usage error, 128 + the signal's
 * number when interrupted: 130 Ctrl-C, 143 SIGTERM, 129 SIGHUP).
 */
export async function main(argv: readonly string[]): Promise<number> {
  try {
    await program().parseAsync([...argv]);
    // Commands that stop cleanly on a signal (train, optimize) set 130; the signal decides the code.
    if (process.exitCode === 130) return interruptExitCode();
    return typeof process.exitCode === 'number' ? process.exitCode : 0;
  } catch (error) {
    if (error instanceof CommanderError) {
      // Help and version exit 0; commander has already printed the usage error.
      return error.exitCode === 0 ? 0 : 2;
    }
    if (error instanceof Error && error.name === 'AbortError') {
      // A folder run keeps the images it finished, and its AbortError says so.
      const kept = error instanceof AbortError && error.kept.length > 0;
      process.stderr.write(`pastiche: ${kept ? error.message : 'interrupted; nothing was written'}\n`);
      return interruptExitCode();
    }
    process.stderr.write(`pastiche: ${messageOf(error)}\n`);
    if (process.env.PASTICHE_DEBUG && error instanceof Error) process.stderr.write(`${error.stack}\n`);
    return isUsageError(error) ? 2 : 1;
  }
}

/** A bad option value, as src/util/validate.ts words them ("Expected …"): a usage error, like commander's. */
function isUsageError(error: unknown): boolean {
  return (error instanceof RangeError || error instanceof TypeError) && error.message.startsWith('Expected ');
}
