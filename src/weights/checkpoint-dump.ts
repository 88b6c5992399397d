/**
 * The deeplearn.js checkpoint dump format used by ml5.js and reiinakano's fast-style-transfer:
 * `manifest.json` maps variable names to `{ filename, shape }`; each file is raw little-endian
 * float32 in TensorFlow's row-major layout.
 */
import { join } from 'node:path';
import type { Tensor } from '../graph/index.js';
import { FileError, messageOf } from '../util/errors.js';
import { readRegularFile } from './model-door.js';

/** A manifest lists variables and shapes; anything near this size is not one. */
const MANIFEST_MAX_BYTES = 16 * 1024 ** 2;

interface ManifestEntry {
  readonly filename: string;
  readonly shape: readonly number[];
}

/** Reads the manifest of a checkpoint directory. */
export async function readCheckpointManifest(dir: string): Promise<Map<string, ManifestEntry>> {
  const path = join(dir, 'manifest.json');
  let text: string;
  try {
    text = (await readRegularFile(path, MANIFEST_MAX_BYTES, 'a checkpoint manifest')).toString('utf8');
  } catch (error) {
    if (error instanceof FileError) throw error;
    throw new FileError(dir, `not a checkpoint directory: cannot read manifest.json (${messageOf(error)})`, { cause: error });
  }
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (error) {
    throw new FileError(path, `is not valid JSON (${messageOf(error)})`, { cause: error });
  }
  if (typeof json !== 'object' || json === null || Array.isArray(json)) throw new FileError(path, 'expected an object mapping variable names to {filename, shape}');
  const entries = new Map<string, ManifestEntry>();
  for (const [name, entry] of Object.entries(json)) {
    const e = entry as Partial<ManifestEntry>;
    if (typeof e?.filename !== 'string' || !Array.isArray(e.shape) || !e.shape.every((d) => Number.isInteger(d) && d >= 0)) {
      throw new FileError(path, `entry '${name}' needs a filename and an integer shape`);
    }
    // A plain name inside the folder: '../../.ssh/id_rsa' would paint that file into the weights.
    if (!/^[^/\\]+$/.test(e.filename) || e.filename === '.' || e.filename === '..') {
      throw new FileError(path, `entry '${name}' names ${JSON.stringify(e.filename.slice(0, 80))}, which is not a file inside the checkpoint folder`);
    }
    entries.set(name, { filename: e.filename, shape: e.shape });
  }
  return entries;
}

/**
 * Reads the named variables (all when `names` is omitted) of a checkpoint directory.
 * @throws FileError naming the file when a variable is missing or its size does not match its shape.
 */
export async function readCheckpointDump(dir: string, names?: readonly string[]): Promise<Map<string, Tensor>> {
  const manifest = await readCheckpointManifest(dir);
  const wanted = names ?? [...manifest.keys()];
  const tensors = new Map<string, Tensor>();
  for (const name of wanted) {
    const entry = manifest.get(name);
    if (!entry) throw new FileError(join(dir, 'manifest.json'), `missing variable '${name}'`);
    const path = join(dir, entry.filename);
    let bytes: Buffer;
    try {
      // Through the model door's reader: a variable that is /dev/zero or a FIFO is refused, not read forever.
      bytes = await readRegularFile(path);
    } catch (error) {
      if (error instanceof FileError) throw error;
      throw new FileError(path, `cannot read variable '${name}' (${messageOf(error)})`, { cause: error });
    }
    const count = entry.shape.reduce((a, b) => a * b, 1);
    if (bytes.byteLength !== count * 4) {
      throw new FileError(path, `variable '${name}' of shape [${entry.shape.join(', ')}] needs ${count * 4} bytes but the file has ${bytes.byteLength}`);
    }
    // Copy into an aligned buffer; Buffer slices from the pool need not be 4-byte aligned.
    const data = new Float32Array(count);
    new Uint8Array(data.buffer).set(bytes);
    tensors.set(name, { data, shape: [...entry.shape] });
  }
  return tensors;
}
