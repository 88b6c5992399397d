/** Limits that keep `pastiche serve` alive: bounded concurrency, request timeouts, clients that walk away. */
import assert from 'node:assert/strict';
import { readdir } from 'node:fs/promises';
import { request } from 'node:http';
import { setTimeout as sleep } from 'node:timers/promises';
import { after, before, test } from 'node:test';
import { gradientPng, scratchStore, serve, type Scratch } from './harness.js';

let dir: Scratch;
let image: Uint8Array<ArrayBuffer>;

before(async () => {
  dir = await scratchStore('pastiche-server-load-');
  image = new Uint8Array(await gradientPng(256, 256));
});

after(async () => {
  await dir.cleanup();
});

const stylize = (url: string) => fetch(`${url}/api/stylize?model=zoo&format=png`, { method: 'POST', body: image });

/** Waits until `dir` is empty (work aborted by a timeout or a disconnect cleans up as it stops). */
async function emptied(path: string): Promise<string[]> {
  for (let i = 0; i < 100; i++) {
    const left = await readdir(path);
    if (left.length === 0) return left;
    await sleep(50);
  }
  return readdir(path);
}

test('200 concurrent stylize requests against a limit of 2: the rest get 503 + Retry-After, no crash, then a normal request succeeds', async () => {
  const server = await serve({ limits: { maxConcurrent: 2, maxQueued: 2, retryAfterSeconds: 3 } });
  try {
    await (await stylize(server.url)).arrayBuffer(); // the model is opened once, outside the flood
    const replies = await Promise.all(Array.from({ length: 200 }, async () => {
      const res = await stylize(server.url);
      const body = Buffer.from(await res.arrayBuffer());
      return { status: res.status, retryAfter: res.headers.get('retry-after'), body };
    }));
    const statuses = replies.map((r) => r.status);
    assert.ok(statuses.every((s) => s === 200 || s === 503), `statuses: ${statuses.join(' ')}`);
    const ok = replies.filter((r) => r.status === 200);
    const busy = replies.filter((r) => r.status === 503);
    assert.ok(ok.length >= 4, `at least the running and queued ones finish (${ok.length})`);
    assert.ok(busy.length >= 1, 'the flood is refused');
    for (const r of busy) {
      assert.equal(r.retryAfter, '3');
      assert.match(JSON.parse(r.body.toString()).error, /busy/);
    }
    const after = await stylize(server.url);
    assert.equal(after.status, 200);
    assert.equal(after.headers.get('content-type'), 'image/png');
    assert.deepEqual(await emptied(server.dir), []);
    assert.deepEqual(server.logged, []);
  } finally {
    await server.close();
  }
});

/** Sends the headers and part of a body, then nothing more: resolves with the reply, if one comes. */
function stalledUpload(port: number): { reply: Promise<{ status: number; retryAfter?: string; body: string }>; abort: () => void } {
  const req = request({ host: '127.0.0.1', port, method: 'POST', path: '/api/stylize?model=zoo', headers: { 'Content-Length': '100000' } });
  const reply = new Promise<{ status: number; retryAfter?: string; body: string }>((resolve, reject) => {
    req.on('response', (res) => {
      let body = '';
      res.on('data', (c: Buffer) => (body += c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, retryAfter: res.headers['retry-after'] as string | undefined, body }));
    });
    req.on('error', reject);
  });
  req.write(Buffer.alloc(1000, 7));
  return { reply, abort: () => req.destroy() };
}

test('a request that outlives its time is answered 503 with Retry-After, and its upload is removed', async () => {
  const server = await serve({ limits: { requestTimeoutMs: 400, maxConcurrent: 1, maxQueued: 0 } });
  try {
    const { reply, abort } = stalledUpload(server.port);
    const res = await reply;
    abort();
    assert.equal(res.status, 503);
    assert.ok(res.retryAfter);
    assert.match(JSON.parse(res.body).error, /longer than 0.4 s/);
    assert.deepEqual(await emptied(server.dir), []);
    // Its slot was given back: with one slot and no queue, the next request runs.
    assert.equal((await stylize(server.url)).status, 200);
  } finally {
    await server.close();
  }
});

test('a client that disconnects mid-upload aborts its work, frees its slot and leaves no files', async () => {
  const server = await serve({ limits: { maxConcurrent: 1, maxQueued: 0 } });
  try {
    const { reply, abort } = stalledUpload(server.port);
    reply.catch(() => undefined);
    await sleep(200);
    assert.equal((await readdir(server.dir)).length, 1, 'the upload is being written');
    const busy = await stylize(server.url);
    assert.equal(busy.status, 503, 'the one slot is held by the stalled upload');
    abort();
    assert.deepEqual(await emptied(server.dir), []);
    assert.equal((await stylize(server.url)).status, 200);
    assert.deepEqual(server.logged, []);
  } finally {
    await server.close();
  }
});

test('closing the server aborts a request in flight and removes its folder', async () => {
  const server = await serve();
  const { reply } = stalledUpload(server.port);
  await sleep(200);
  await server.close();
  const res = await reply.catch(() => null);
  if (res !== null) assert.equal(res.status, 503);
  await assert.rejects(readdir(server.dir), /ENOENT/);
});

test('memory stays flat over 1,000 stylize requests', async () => {
  const server = await serve();
  try {
    const small = new Uint8Array(await gradientPng(48, 32));
    const once = async () => {
      const res = await fetch(`${server.url}/api/stylize?model=zoo`, { method: 'POST', body: small });
      assert.equal(res.status, 200);
      await res.arrayBuffer();
    };
    for (let i = 0; i < 50; i++) await once();
    global.gc?.();
    const before = process.memoryUsage().rss;
    for (let i = 0; i < 1000; i++) await once();
    global.gc?.();
    const grown = (process.memoryUsage().rss - before) / 2 ** 20;
    assert.ok(grown < 64, `RSS grew by ${grown.toFixed(1)} MiB`);
    assert.deepEqual(await emptied(server.dir), []);
  } finally {
    await server.close();
  }
});
