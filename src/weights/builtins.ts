/**
 * Built-in styles: ONNX networks trained by pastiche itself from public-domain paintings, shipped
 * in the package's `models/` folder, so `--model wave` works on a fresh machine with no import.
 *
 * Each `models/<name>.onnx` has a `models/<name>.json` beside it: the painting's credits (title,
 * artist, year, collection, licence) and the training record `pastiche train` wrote (command,
 * steps, images seen, wall time, final losses). The user's store comes first: a stored model of
 * the same name hides the built-in, so a user can retrain or replace one.
 */
import { readdir, readFile } from 'node:fs/promises';
import { basename, join } from 'node:path';
import { fileURLToPath } from 'node:url';

/** What `models/<name>.json` says about a built-in style. */
export interface BuiltinRecord {
  /** The painting the style was trained on. */
  readonly credits: {
    readonly title: string;
    readonly artist: string;
    readonly year: string;
    readonly collection: string;
    readonly licence: string;
    /** The style image's file name in the project's shared data (training provenance). */
    readonly styleImage?: string;
  };
  /** `training.json` as `pastiche train` wrote it (command, steps, images seen, wall time, losses). */
  readonly training?: Readonly<Record<string, unknown>>;
  /** Anything further worth knowing (e.g. how it was stabilised or distilled). */
  readonly notes?: string;
}

/**
 * The folder holding the built-in models. `PASTICHE_BUILTINS` moves it (tests, or a packager that
 * keeps models elsewhere); setting it to an empty string turns the built-ins off.
 */
export function builtinDir(): string | undefined {
  const override = process.env.PASTICHE_BUILTINS;
  if (override !== undefined) return override === '' ? undefined : override;
  // src/weights/ (tsx) and dist/weights/ (compiled) both sit two levels below the package root.
  return fileURLToPath(new URL('../../models/', import.meta.url));
}

/** Names of the built-in models (their `.onnx` files in {@link builtinDir}), sorted. */
export async function builtinNames(): Promise<string[]> {
  const dir = builtinDir();
  if (dir === undefined) return [];
  const files = await readdir(dir).catch(() => [] as string[]);
  return files.filter((f) => f.endsWith('.onnx') && !f.startsWith('.')).map((f) => basename(f, '.onnx')).sort();
}

/** The file of built-in model `name` (a name already checked by checkModelName), or undefined. */
export async function builtinPath(name: string): Promise<string | undefined> {
  const dir = builtinDir();
  if (dir === undefined) return undefined;
  return (await builtinNames()).includes(name) ? join(dir, `${name}.onnx`) : undefined;
}

/** The credits and training record of built-in `name`; undefined when it has none or it is unreadable. */
export async function builtinRecord(name: string): Promise<BuiltinRecord | undefined> {
  const dir = builtinDir();
  if (dir === undefined) return undefined;
  try {
    return JSON.parse(await readFile(join(dir, `${name}.json`), 'utf8')) as BuiltinRecord;
  } catch {
    return undefined;
  }
}
