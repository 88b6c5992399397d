/**
 * The one way tests and benchmarks find `../shared/data`: `$PASTICHE_DATA`, else `../shared/data`
 * beside the project root. It is absent on a user's machine, so callers skip with a printed reason.
 */
import { existsSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const projectRoot = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..');

/** Absolute path of the shared data folder, or null when it is not there. */
export function sharedDataDir(): string | null {
  const candidate = process.env.PASTICHE_DATA ?? join(projectRoot, '..', 'shared', 'data');
  return existsSync(candidate) ? resolve(candidate) : null;
}

/**
 * Path of `relative` inside the shared data, or a skip reason for node:test's `{ skip }` option.
 * Usage: `const p = dataPath('images/content/tubingen.jpg'); test('x', { skip: p.skip }, ...)`.
 */
export function dataPath(relative: string): { path: string; skip: string | false } {
  const dir = sharedDataDir();
  if (dir === null) {
    return { path: '', skip: 'shared data not found (set PASTICHE_DATA or put it at ../shared/data)' };
  }
  const path = join(dir, relative);
  return existsSync(path) ? { path, skip: false } : { path, skip: `${relative} not found in ${dir}` };
}

export { projectRoot };
