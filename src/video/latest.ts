/**
 * A queue of length one for live sources: a new item replaces the one nobody has taken yet. Live
 * means the newest frame, not a backlog that grows while stylisation falls behind; what is replaced
 * is counted as dropped.
 */

/** One item taken from a {@link Latest}, with how many were dropped since the last one taken. */
export interface LatestItem<T> {
  readonly value: T;
  readonly dropped: number;
}

export interface Latest<T> {
  /** Offers an item; returns the item it replaced (now dropped), if any, so its memory can be reused. */
  push(item: T): T | undefined;
  /** No more items will come; a pending one is still handed out, then `next` resolves null. */
  end(): void;
  /** The newest item not yet taken, waiting for one if there is none; null once ended and empty. */
  next(): Promise<LatestItem<T> | null>;
  /** Items pushed so far. */
  readonly pushed: number;
  /** Items replaced before anyone took them. */
  readonly dropped: number;
}

/**
 * Creates an empty slot.
 * @example
 * const frames = latestOnly<Uint8Array>();
 * decoder.on('frame', (f) => frames.push(f));
 * for (let item; (item = await frames.next()) !== null;) await stylise(item.value);
 */
export function latestOnly<T>(): Latest<T> {
  let pending: { value: T } | null = null;
  let waiter: ((item: LatestItem<T> | null) => void) | null = null;
  let ended = false;
  let pushed = 0;
  let dropped = 0;
  let droppedSinceTaken = 0;

  const take = (): LatestItem<T> => {
    const item = { value: (pending as { value: T }).value, dropped: droppedSinceTaken };
    pending = null;
    droppedSinceTaken = 0;
    return item;
  };

  return {
    push(value) {
      if (ended) throw new Error('push() after end()');
      pushed += 1;
      const replaced = pending;
      if (replaced !== null) {
        dropped += 1;
        droppedSinceTaken += 1;
      }
      pending = { value };
      if (waiter !== null) {
        const resolve = waiter;
        waiter = null;
        resolve(take());
      }
      return replaced?.value;
    },
    end() {
      ended = true;
      if (waiter !== null && pending === null) {
        const resolve = waiter;
        waiter = null;
        resolve(null);
      }
    },
    next() {
      if (waiter !== null) return Promise.reject(new Error('next() while another next() is pending'));
      if (pending !== null) return Promise.resolve(take());
      if (ended) return Promise.resolve(null);
      return new Promise((resolve) => (waiter = resolve));
    },
    get pushed() {
      return pushed;
    },
    get dropped() {
      return dropped;
    },
  };
}
