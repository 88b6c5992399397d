/**
 * What every weight-file reader offers: the names and shapes of the tensors a file holds, known
 * without reading their data, and a way to read just the ones needed.
 */
import type { Tensor } from '../graph/index.js';

export interface TensorSource {
  /** The file or folder read. */
  readonly path: string;
  /** Every tensor's name and shape, in the file's order. */
  readonly shapes: ReadonlyMap<string, readonly number[]>;
  /**
   * Reads the named tensors as float32 (dequantised or widened where stored otherwise).
   * @throws FileError naming the file for unknown names or unreadable data.
   */
  read(names: readonly string[]): Promise<Map<string, Tensor>>;
}

/** Picks names from a list or by a predicate; every name when `wanted` is omitted. */
export type Wanted = readonly string[] | ((name: string) => boolean);

export function selectNames(all: Iterable<string>, wanted?: Wanted): string[] {
  const names = [...all];
  if (wanted === undefined) return names;
  if (typeof wanted === 'function') return names.filter(wanted);
  return [...wanted];
}
