/**
 * The one check that keeps pastiche from writing over what it reads: every image, folder and video
 * run passes its input → output pairs through {@link refuseOverwritingInputs} before any work.
 */
import { stat } from 'node:fs/promises';
import { resolve } from 'node:path';
import { FileError } from './errors.js';

/** One file a run reads and the file it writes from it. */
export interface InputOutput {
  readonly input: string;
  readonly output: string;
}

/** Device and inode of an existing file (symlinks followed), or null when there is none to stat. */
async function fileIdentity(path: string): Promise<string | null> {
  // A missing or unreadable path cannot be an input; reading or writing it reports its own error.
  const info = await stat(path, { bigint: true }).catch(() => null);
  return info === null ? null : `${info.dev}:${info.ino}`;
}

/**
 * Refuses a run in which an output is one of the inputs — the same path, another spelling of it,
 * a symlink or a hard link to it: identity is device + inode, so each is caught — or in which two
 * inputs would write the same output. Call it with every pair of the run before any work, so a
 * refused run writes nothing; an existing output that is not an input is left to be replaced.
 *
 * @example await refuseOverwritingInputs([{ input: 'in/photo.jpg', output: 'out/photo.jpg' }]);
 * @throws FileError naming the output and the input it is, or the two inputs that would share it.
 */
export async function refuseOverwritingInputs(pairs: readonly InputOutput[]): Promise<void> {
  await refuseOutputsThatAreInputs(pairs.map((p) => p.input), pairs.map((p) => p.output));
  const writer = new Map<string, string>();
  for (const { input, output } of pairs) {
    const first = writer.get(resolve(output));
    if (first !== undefined && first !== input) {
      throw new FileError(output, `would be written from both ${first} and ${input}; rename one of them or leave out --format`);
    }
    writer.set(resolve(output), input);
  }
}

/**
 * Refuses a run whose one `output` is any of its `inputs` (a content image, style images, masks),
 * by device + inode as {@link refuseOverwritingInputs} does.
 *
 * @example await refuseOverwritingAnyInput('out.png', ['photo.jpg', 'starry.jpg']);
 * @throws FileError naming the output and the input it is.
 */
export async function refuseOverwritingAnyInput(output: string, inputs: readonly string[]): Promise<void> {
  await refuseOutputsThatAreInputs(inputs, [output]);
}

async function refuseOutputsThatAreInputs(inputs: readonly string[], outputs: readonly string[]): Promise<void> {
  const inputIds = await Promise.all(inputs.map(fileIdentity));
  const inputById = new Map<string, string>();
  for (const [i, id] of inputIds.entries()) if (id !== null && !inputById.has(id)) inputById.set(id, inputs[i]);
  const outputIds = await Promise.all(outputs.map(fileIdentity));
  for (const [i, id] of outputIds.entries()) {
    const input = id === null ? undefined : inputById.get(id);
    if (input !== undefined) {
      throw new FileError(outputs[i], `is the input ${input}: pastiche never overwrites its input; choose another --output`);
    }
  }
}
