import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readAhead } from '../../src/video/read-ahead.js';

/** A source that logs when each item is requested and delivered. */
function source(count: number, log: string[], failAt = -1): AsyncGenerator<number, void, undefined> {
  return (async function* () {
    try {
      for (let i = 0; i < count; i += 1) {
        log.push(`fetch ${i}`);
        await new Promise((r) => setTimeout(r, 1));
        if (i === failAt) throw new Error(`source failed at ${i}`);
        yield i;
      }
    } finally {
      log.push('source closed');
    }
  })();
}

test('readAhead fetches item n + 1 before the consumer is done with item n', async () => {
  const log: string[] = [];
  const seen: number[] = [];
  for await (const item of readAhead(source(3, log))) {
    log.push(`use ${item}`);
    await new Promise((r) => setTimeout(r, 5)); // the consumer's "transform"
    seen.push(item);
  }
  assert.deepEqual(seen, [0, 1, 2]);
  assert.deepEqual(log, ['fetch 0', 'fetch 1', 'use 0', 'fetch 2', 'use 1', 'source closed', 'use 2']);
});

test('readAhead surfaces a failure of the prefetched item when it is reached, not as unhandled', async () => {
  const log: string[] = [];
  const seen: number[] = [];
  await assert.rejects((async () => {
    for await (const item of readAhead(source(5, log, 1))) {
      await new Promise((r) => setTimeout(r, 20)); // the prefetch fails meanwhile
      seen.push(item);
    }
  })(), { message: 'source failed at 1' });
  assert.deepEqual(seen, [0]);
});

test('leaving early closes the source', async () => {
  const log: string[] = [];
  for await (const item of readAhead(source(5, log))) if (item === 1) break;
  assert.equal(log.at(-1), 'source closed');
  assert.ok(!log.includes('fetch 3'));
});
