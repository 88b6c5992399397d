/**
 * Wraps an async iterator so the next item is already being fetched while the consumer works on the
 * current one: with a decoder as the source, frame n + 1 decodes while frame n is transformed.
 * @example for await (const frame of readAhead(decodeFrames('in.mp4'))) await stylise(frame);
 */
export async function* readAhead<T>(source: AsyncIterator<T>): AsyncGenerator<T, void, undefined> {
  let next = source.next();
  try {
    for (;;) {
      const result = await next;
      if (result.done === true) return;
      next = source.next();
      // A rejection is rethrown when awaited above; until then it must not count as unhandled.
      next.catch(() => {});
      yield result.value;
    }
  } finally {
    // Leaving early stops the source; an async generator runs this after its pending next() settles.
    await source.return?.();
  }
}
