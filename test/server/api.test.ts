/** `pastiche serve`'s API: models, model files (ETag, traversal), and POST /api/stylize with good and hostile uploads. */
import { builtinNames } from '../../src/weights/builtins.js';
import assert from 'node:assert/strict';
import { request } from 'node:http';
import { readdir } from 'node:fs/promises';
import { after, before, describe, test } from 'node:test';
import sharp from 'sharp';
import { ZOO_SCALE, ZOO_SHIFT } from '../helpers/models.js';
import { writeSolidPng } from '../helpers/files.js';
import { readFile } from 'node:fs/promises';
import { gradientPng, scratchStore, serve, type Scratch } from './harness.js';

let dir: Scratch;
let server: Awaited<ReturnType<typeof serve>>;

before(async () => {
  dir = await scratchStore('pastiche-server-api-');
  server = await serve({ limits: { maxUploadBytes: 256 * 1024, maxPixels: 4_000_000 } });
});

after(async () => {
  await server.close();
  await dir.cleanup();
});

const post = (query: string, body: Uint8Array, headers: Record<string, string> = {}) =>
  fetch(`${server.url}/api/stylize?${query}`, { method: 'POST', body: new Uint8Array(body), headers });

/** A raw GET with the path exactly as written (fetch would normalise '..' and encoded slashes). */
function rawGet(path: string): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const req = request({ host: '127.0.0.1', port: server.port, path, method: 'GET' }, (res) => {
      let body = '';
      res.on('data', (c: Buffer) => (body += c.toString('latin1')));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
    });
    req.on('error', reject);
    req.end();
  });
}

describe('GET /api/models', () => {
  test('lists the store, then the built-in styles, with name, architecture, description, bytes', async () => {
    const res = await fetch(`${server.url}/api/models`);
    assert.equal(res.status, 200);
    assert.match(res.headers.get('content-type') ?? '', /application\/json/);
    const { models } = (await res.json()) as { models: { name: string; architecture: string; description: string; bytes: number; url: string; builtin: boolean }[] };
    assert.deepEqual(models.filter((m) => m.builtin).map((m) => m.name), await builtinNames());
    const builtin = models.find((m) => m.builtin);
    if (builtin) {
      // A built-in's file is served like a stored one (the page's onnxruntime-web loads it).
      const file = await fetch(`${server.url}${builtin.url}`);
      assert.equal(file.status, 200);
      assert.equal(Number(file.headers.get('content-length')), builtin.bytes);
      await file.arrayBuffer();
    }
    assert.equal(models[0].builtin, false);
    assert.equal(models[0].name, 'zoo');
    assert.equal(models[0].url, '/models/zoo.onnx');
    assert.ok(models[0].bytes > 0);
    assert.equal(typeof models[0].architecture, 'string');
    assert.equal(typeof models[0].description, 'string');
  });
});

describe('GET /models/<name>.onnx', () => {
  test('serves the store file with an ETag; If-None-Match gives 304; HEAD has no body', async () => {
    const res = await fetch(`${server.url}/models/zoo.onnx`);
    assert.equal(res.status, 200);
    const bytes = Buffer.from(await res.arrayBuffer());
    assert.deepEqual(bytes, await readFile(dir.path('home', 'models', 'zoo.onnx')));
    const etag = res.headers.get('etag');
    assert.ok(etag);
    assert.match(res.headers.get('cache-control') ?? '', /no-cache/);
    const again = await fetch(`${server.url}/models/zoo.onnx`, { headers: { 'If-None-Match': etag } });
    assert.equal(again.status, 304);
    assert.equal((await again.arrayBuffer()).byteLength, 0);
    const head = await fetch(`${server.url}/models/zoo.onnx`, { method: 'HEAD' });
    assert.equal(head.status, 200);
    assert.equal(head.headers.get('content-length'), String(bytes.length));
    assert.equal(head.headers.get('etag'), etag);
  });

  test('unknown names are 404', async () => {
    const res = await fetch(`${server.url}/models/nope.onnx`);
    assert.equal(res.status, 404);
    assert.match(((await res.json()) as { error: string }).error, /no model named 'nope'/);
  });

  for (const path of [
    '/models/..%2F..%2F..%2Fetc%2Fpasswd.onnx', '/models/..%2Fzoo.onnx', '/models/%2Fetc%2Fpasswd.onnx', '/models/%2e%2e%2fhome.onnx',
    '/models/../../etc/passwd', '/models/sub/zoo.onnx', '/models/zoo.onnx%00.txt', '/models/%E0%A4%A.onnx', '/models/.hidden.onnx',
    '/models/zoo', '/models/..%5c..%5cwindows.onnx',
  ]) {
    test(`no way out of the store: ${path}`, async () => {
      const res = await rawGet(path);
      assert.ok([400, 404].includes(res.status), `${path}: ${res.status}`);
      assert.doesNotMatch(res.body, /root:|ONNX|pastiche\.name/);
      assert.match(JSON.parse(res.body).error, /./);
    });
  }
});

describe('POST /api/stylize', () => {
  test('a PNG comes back as a PNG, each pixel the model\'s map of the input', async () => {
    const input = await gradientPng(64, 48);
    const res = await post('model=zoo', input);
    assert.equal(res.status, 200, await res.clone().text());
    assert.equal(res.headers.get('content-type'), 'image/png');
    const out = await sharp(Buffer.from(await res.arrayBuffer())).raw().toBuffer({ resolveWithObject: true });
    assert.equal(out.info.width, 64);
    assert.equal(out.info.height, 48);
    const { data } = await sharp(input).raw().toBuffer({ resolveWithObject: true });
    let worst = 0;
    for (let i = 0; i < data.length; i++) worst = Math.max(worst, Math.abs(out.data[i] - (ZOO_SCALE * data[i] + ZOO_SHIFT)));
    assert.ok(worst <= 1, `max difference ${worst}`);
  });

  test('size, strength, colors and format are applied; a JPEG keeps its format by default', async () => {
    const jpeg = await gradientPng(80, 40, 'jpeg');
    const same = await post('model=zoo&size=40', jpeg);
    assert.equal(same.status, 200);
    assert.equal(same.headers.get('content-type'), 'image/jpeg');
    const meta = await sharp(Buffer.from(await same.arrayBuffer())).metadata();
    assert.deepEqual([meta.width, meta.height, meta.format], [40, 20, 'jpeg']);
    const png = await gradientPng(32, 32);
    const none = await post('model=zoo&strength=0&colors=luminance&format=webp', png);
    assert.equal(none.status, 200);
    assert.equal(none.headers.get('content-type'), 'image/webp');
    const back = await sharp(Buffer.from(await none.arrayBuffer())).raw().toBuffer();
    const original = await sharp(png).raw().toBuffer();
    let worst = 0;
    for (let i = 0; i < back.length; i++) worst = Math.max(worst, Math.abs(back[i] - original[i]));
    assert.ok(worst <= 12, `strength 0 returns the content (lossy WebP), max difference ${worst}`);
    const hist = await post('model=zoo&colors=histogram&format=png', png);
    assert.equal(hist.status, 200);
    assert.equal(hist.headers.get('content-type'), 'image/png');
  });

  for (const [query, message] of [
    ['', /model/],
    ['model=zoo&strength=1.5', /Expected a number between 0 and 1 for strength but received 1.5/],
    ['model=zoo&strength=abc', /Expected a number for strength/],
    ['model=zoo&size=4', /size/],
    ['model=zoo&size=1e3', /Expected an integer for size/],
    ['model=zoo&colors=sepia', /Expected one of 'luminance', 'histogram' for colors/],
    ['model=zoo&format=gif', /for format/],
    ['model=..%2Fzoo', /model name/],
  ] as const) {
    test(`bad query '${query}' is 400 with a message`, async () => {
      const res = await post(query, await gradientPng(8, 8));
      assert.equal(res.status, 400);
      assert.match(((await res.json()) as { error: string }).error, message);
    });
  }

  test('an unknown model is 404', async () => {
    const res = await post('model=nope', await gradientPng(8, 8));
    assert.equal(res.status, 404);
  });

  test('what is not an image is 415, whatever the Content-Type says', async () => {
    for (const body of [Buffer.from('hello, this is text and not a picture at all'), Buffer.from('<svg xmlns="http://www.w3.org/2000/svg" width="10" height="10"/>')]) {
      const res = await post('model=zoo', body, { 'Content-Type': 'image/png' });
      assert.equal(res.status, 415);
      const { error } = (await res.json()) as { error: string };
      assert.match(error, /^upload: not a supported image/);
      assert.doesNotMatch(error, /pastiche-serve|stylize-/, 'the server\'s temporary path is not shown');
    }
  });

  test('a truncated or corrupt image is 400; an empty body is 400', async () => {
    const png = await gradientPng(64, 64);
    const truncated = await post('model=zoo', png.subarray(0, Math.floor(png.length / 2)));
    assert.equal(truncated.status, 400);
    assert.match(((await truncated.json()) as { error: string }).error, /corrupt or truncated/);
    const garbage = Buffer.concat([png.subarray(0, 40), Buffer.alloc(2000, 0x5a)]);
    const corrupt = await post('model=zoo', garbage);
    assert.equal(corrupt.status, 400);
    const empty = await post('model=zoo', new Uint8Array(0));
    assert.equal(empty.status, 400);
    assert.match(((await empty.json()) as { error: string }).error, /empty/);
  });

  test('an oversized upload is 413 (declared or streamed without a length)', async () => {
    const big = Buffer.alloc(300 * 1024, 1);
    const declared = await post('model=zoo', big);
    assert.equal(declared.status, 413);
    assert.match(((await declared.json()) as { error: string }).error, /over the limit of 262144 bytes/);
    // A chunked body has no Content-Length: refused once it passes the limit while streaming.
    let sent = 0;
    const stream = new ReadableStream<Uint8Array>({
      pull(controller) {
        if (sent >= 4 * 1024 * 1024) return controller.close();
        sent += 64 * 1024;
        controller.enqueue(new Uint8Array(64 * 1024));
      },
    });
    const streamed = await fetch(`${server.url}/api/stylize?model=zoo`, { method: 'POST', body: stream, duplex: 'half' } as RequestInit);
    assert.equal(streamed.status, 413);
  });

  test('an image over the pixel limit is 413 before decoding, though its file is small', async () => {
    await writeSolidPng(dir.path('huge.png'), 4000, 4000);
    const res = await post('model=zoo', await readFile(dir.path('huge.png')));
    assert.equal(res.status, 413);
    assert.match(((await res.json()) as { error: string }).error, /over the limit of 4000000 pixels/);
  });

  test('after all that, no temporary files are left', async () => {
    assert.deepEqual(await readdir(server.dir), []);
  });
});

describe('routing', () => {
  test('unknown paths are 404, wrong methods 405, as JSON', async () => {
    const missing = await fetch(`${server.url}/api/nothing`);
    assert.equal(missing.status, 404);
    assert.match(((await missing.json()) as { error: string }).error, /no such endpoint/);
    const wrong = await fetch(`${server.url}/api/stylize`);
    assert.equal(wrong.status, 405);
  });
});
