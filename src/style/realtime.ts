/**
 * `--realtime`: a style's real-time network. A style NAME in the store may have a second, smaller
 * network for video and live use, stored as `NAME-rt` (the built-ins' convention: quality `wave`,
 * real-time `wave-rt`). A network trained with `--arch realtime` says so in its metadata
 * (pastiche.architecture `realtime` or `realtime[…]x…`), so a real-time model named directly is
 * taken as it is.
 */
import { basename } from 'node:path';
import { listModels, storeDir, type StoredModel } from '../weights/store.js';

/** The suffix that names a style's real-time network in the store. */
export const REALTIME_SUFFIX = '-rt';

/** Whether a stored architecture name is the real-time one (with or without custom widths). */
export function isRealtimeArchitecture(architecture: string): boolean {
  return architecture === 'realtime' || architecture.startsWith('realtime[');
}

/**
 * The store name of the real-time network for `--model name`: `name` itself when its metadata
 * marks a real-time architecture, else `name-rt` when the store has it.
 *
 * @example await realtimeModelName('wave'); // 'wave-rt'
 * @throws RangeError when `name` is a path (only store names have siblings); Error naming the
 *   missing `name-rt` and listing the real-time networks the store does have, when there is none.
 */
export async function realtimeModelName(name: string): Promise<string> {
  if (name.includes('/') || name.includes('\\') || name.endsWith('.onnx') || name.startsWith('.')) {
    throw new RangeError(`Expected a model store name for --realtime but received the path '${name}': --realtime picks a stored style's real-time network (NAME${REALTIME_SUFFIX}); give a real-time network's file to --model without --realtime`);
  }
  const models = await listModels();
  // By file name, which is what --model resolves, whatever name the metadata holds.
  const byName = new Map<string, StoredModel>(models.map((m) => [basename(m.path, '.onnx'), m]));
  const own = byName.get(name);
  if (own && isRealtimeArchitecture(own.architecture)) return name;
  const sibling = `${name}${REALTIME_SUFFIX}`;
  if (byName.has(sibling)) return sibling;
  const realtime = [...byName].filter(([n, m]) => n.endsWith(REALTIME_SUFFIX) || isRealtimeArchitecture(m.architecture)).map(([n]) => n);
  const what = own ? `style '${name}' (a ${own.architecture} network)` : `'${name}'`;
  throw new Error(
    `No real-time network for ${what}: the store (${storeDir()}) has no model '${sibling}'` + (own ? '' : ` nor '${name}'`) + '; ' +
    (realtime.length ? `real-time networks in the store: ${realtime.join(', ')}` : 'the store holds no real-time network') +
    `. Train one with \`pastiche train --arch realtime --name ${sibling}\`, or drop --realtime`,
  );
}
