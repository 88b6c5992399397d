/**
 * The IMAGE door for folders: which files a folder run reads. Links inside the folder are not
 * followed — a link can lead out of the folder (to a user's other files, or, on a server, to
 * anywhere) and round in circles — but they are reported with the reason, never dropped silently.
 */
import { readdir, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { SUPPORTED_IMAGE_EXTENSIONS, isSupportedImagePath } from './codec.js';
import { FileError } from '../util/errors.js';

/** One entry of a folder run: an image to read, or a path skipped with the reason. */
export type FolderEntry = { readonly input: string; readonly skip?: undefined } | { readonly input: string; readonly skip: string };

const NOT_FOLLOWED = '(links inside a folder are not followed)';

/**
 * Every image under `dir` (recursively, by name within each folder) and every symbolic link that
 * names an image or leads to a folder, as skips: 'is a symbolic link (…)'. Files without an image
 * extension are not listed.
 *
 * @example const entries = await listFolderImages('photos'); // [{ input: 'photos/a.jpg' }, …]
 * @throws {FileError} naming `dir` when it cannot be read, or when it holds no images at all:
 *   'no images found (looked for .jpg, …, in subfolders too)'.
 */
export async function listFolderImages(dir: string): Promise<FolderEntry[]> {
  let entries: FolderEntry[];
  try {
    entries = await walk(dir);
  } catch (error) {
    throw new FileError(dir, `cannot read the folder (${(error as NodeJS.ErrnoException).code ?? String(error)})`, { cause: error });
  }
  if (entries.length === 0) throw new FileError(dir, `no images found (looked for ${SUPPORTED_IMAGE_EXTENSIONS.join(', ')}, in subfolders too)`);
  return entries;
}

async function walk(dir: string): Promise<FolderEntry[]> {
  const found: FolderEntry[] = [];
  for (const entry of (await readdir(dir, { withFileTypes: true })).sort((a, b) => a.name.localeCompare(b.name))) {
    const path = join(dir, entry.name);
    if (entry.isDirectory()) found.push(...(await walk(path)));
    else if (entry.isFile() && isSupportedImagePath(path)) found.push({ input: path });
    else if (entry.isSymbolicLink()) {
      if (isSupportedImagePath(path)) found.push({ input: path, skip: `is a symbolic link ${NOT_FOLLOWED}` });
      else if ((await stat(path).catch(() => null))?.isDirectory()) found.push({ input: path, skip: `is a symbolic link to a folder ${NOT_FOLLOWED}` });
    }
  }
  return found;
}
