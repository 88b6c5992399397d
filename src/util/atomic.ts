import { randomBytes } from 'node:crypto';
import { rmSync, writeFileSync } from 'node:fs';
import { mkdir, readdir, rename, rm, rmdir, stat, access, constants } from 'node:fs/promises';
import { basename, dirname, extname, join, relative } from 'node:path';
import { FileError, messageOf } from './errors.js';

/**
 * A temporary path beside `target` (same directory, so the final rename is atomic), keeping the
 * extension so tools that pick a format by extension (sharp, ffmpeg) still see the right one.
 * The name carries this process's id, so a later run can tell a leftover of a killed run
 * (see {@link sweepStaleTemps}) from a file another running pastiche is still writing.
 */
export function tempPathFor(target: string): string {
  const ext = extname(target);
  const stem = basename(target, ext);
  return join(dirname(target), `.${stem}.pastiche-tmp-${process.pid}-${randomBytes(4).toString('hex')}${ext}`);
}

const tempName = /^\..*\.pastiche-tmp-(\d+)-[0-9a-f]+(\.[^.]*)?$/;

/**
 * Temporary files being written now, each with a function that stops its writer (an ffmpeg child
 * would otherwise finish the file after we exit); a process exit removes them.
 */
const liveTemps = new Map<string, (() => void) | undefined>();

/**
 * Records a temporary file so that an abrupt exit (a second Ctrl-C) still removes it; `stopWriter`
 * (synchronous) stops another process that writes it.
 */
export function trackTemp(path: string, stopWriter?: () => void): void {
  liveTemps.set(path, stopWriter);
}

/** Forgets a temporary file that was renamed into place or removed. */
export function untrackTemp(path: string): void {
  liveTemps.delete(path);
}

/** Removes every tracked temporary file, synchronously: for `process.exit` paths, where no promise runs. */
export function removeTrackedTemps(): void {
  for (const [path, stopWriter] of liveTemps) {
    try {
      stopWriter?.();
      rmSync(path, { force: true });
    } catch {
      // Best effort on the way out: a file that cannot go is left for the next run's sweep.
    }
  }
  liveTemps.clear();
}

function processAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    // EPERM: it exists but belongs to someone else, so its files are not ours to remove.
    return (error as NodeJS.ErrnoException).code !== 'ESRCH';
  }
}

/**
 * Removes temporary files in `dir` left by pastiche runs that were killed (their owner process is
 * gone). Files of running processes, and names without an owner id, are left alone.
 */
export async function sweepStaleTemps(dir: string): Promise<void> {
  const names = await readdir(dir).catch(() => [] as string[]);
  for (const name of names) {
    const match = tempName.exec(name);
    if (match === null) continue;
    const pid = Number(match[1]);
    if (pid === process.pid || processAlive(pid)) continue;
    await rm(join(dir, name), { force: true }).catch(() => undefined);
  }
}

/**
 * Checks, creating nothing, that `target` could be written: the nearest existing folder on its
 * path is a folder and writable (missing folders below it are made when the file is written).
 * For checks before the work; a run that fails then leaves no empty folders behind.
 *
 * @throws {FileError} naming `target`: 'cannot write here: <path> is a file, not a folder', or
 *   'cannot write here: <folder> is not writable (EACCES)'.
 */
export async function checkWritableDir(target: string): Promise<void> {
  let dir = dirname(target);
  for (;;) {
    const info = await stat(dir).catch((error: NodeJS.ErrnoException) => {
      if (error.code === 'ENOENT' || error.code === 'ENOTDIR') return null; // a file further up is reported below
      throw new FileError(target, `cannot write here: ${dir} cannot be read (${error.code ?? messageOf(error)})`, { cause: error });
    });
    if (info !== null) {
      if (!info.isDirectory()) throw new FileError(target, `cannot write here: ${dir} is a file, not a folder`);
      break;
    }
    if (dirname(dir) === dir) break;
    dir = dirname(dir);
  }
  try {
    await access(dir, constants.W_OK);
  } catch (error) {
    throw new FileError(target, `cannot write here: ${dir} is not writable (${(error as NodeJS.ErrnoException).code ?? messageOf(error)})`, { cause: error });
  }
}

/**
 * Makes `target`'s missing parent folders; returns a function that removes those it made (the
 * deepest first, each only if still empty), for a write that failed.
 */
export async function makeParents(target: string): Promise<() => Promise<void>> {
  const dir = dirname(target);
  let first: string | undefined;
  try {
    first = await mkdir(dir, { recursive: true });
    await access(dir, constants.W_OK);
  } catch (error) {
    throw new FileError(target, `cannot write here (${messageOf(error)})`, { cause: error });
  }
  return async () => {
    if (first === undefined) return;
    const made = relative(first, dir).split(/[\\/]/).filter(Boolean);
    for (let i = made.length; i >= 0; i--) {
      await rmdir(join(first, ...made.slice(0, i))).catch(() => undefined); // not empty: another file is there
    }
  };
}

/**
 * Runs `write` against a temporary path and renames it to `target` only if it succeeds; missing
 * folders are made first. On failure (or cancellation) the temporary file and the folders this
 * call made are removed and `target` is untouched.
 */
export async function writeAtomically<T>(target: string, write: (tempPath: string) => Promise<T>): Promise<T> {
  const removeMadeFolders = await makeParents(target);
  await sweepStaleTemps(dirname(target));
  const temp = tempPathFor(target);
  trackTemp(temp);
  try {
    const result = await write(temp);
    await rename(temp, target);
    return result;
  } catch (error) {
    await rm(temp, { force: true });
    await removeMadeFolders();
    throw error;
  } finally {
    untrackTemp(temp);
  }
}

/** Writes bytes to `target` atomically. */
export async function writeFileAtomically(target: string, data: Uint8Array | string): Promise<void> {
  // Synchronous, so a second signal's cleanup never races a worker thread creating the file.
  await writeAtomically(target, async (temp) => writeFileSync(temp, data));
}
