/**
 * The page's files over HTTP, without a browser: index.html and the bundle it names, onnxruntime-web's
 * wasm runtime from node_modules (application/wasm), ETags and cache headers, an allow-list that no
 * path trick gets past, cross-origin isolation headers on every reply (API and errors too), the
 * bundle cached by its sources' hash, and the gallery's thumbnails.
 */
import assert from 'node:assert/strict';
import { readdir } from 'node:fs/promises';
import { request } from 'node:http';
import { after, before, test } from 'node:test';
import sharp from 'sharp';
import { openStyleModel } from '../../src/style/model.js';
import { stylizeImage } from '../../src/style/transfer.js';
import { storeDir } from '../../src/weights/store.js';
import { onnxruntimeWebDist } from '../../src/server/web-bundle.js';
import { thumbnailScene, THUMBNAIL_HEIGHT, THUMBNAIL_WIDTH } from '../../src/server/thumbnail-route.js';
import { hwcToChw, psnr } from '../helpers/compare.js';
import { scratchStore, serve, type Scratch } from '../server/harness.js';

let dir: Scratch;
let server: Awaited<ReturnType<typeof serve>>;

before(async () => {
  dir = await scratchStore('pastiche-web-static-');
  server = await serve();
});

after(async () => {
  await server.close();
  await dir.cleanup();
});

function expectIsolated(res: Response, what: string): void {
  assert.equal(res.headers.get('cross-origin-opener-policy'), 'same-origin', what);
  assert.equal(res.headers.get('cross-origin-embedder-policy'), 'require-corp', what);
}

test('the page names its bundle; every file comes with its type, an ETag, cache headers and isolation headers', async () => {
  const page = await fetch(`${server.url}/`);
  assert.equal(page.status, 200);
  assert.equal(page.headers.get('content-type'), 'text/html; charset=utf-8');
  assert.equal(page.headers.get('cache-control'), 'no-cache');
  expectIsolated(page, '/');
  const html = await page.text();
  const script = /<script type="module" src="(\/assets\/main-[A-Z0-9]+\.js)"/.exec(html)?.[1];
  const style = /<link rel="stylesheet" href="(\/assets\/main-[A-Z0-9]+\.css)"/.exec(html)?.[1];
  assert.ok(script !== undefined && style !== undefined, html);
  for (const [path, type] of [[script, 'text/javascript; charset=utf-8'], [style, 'text/css; charset=utf-8']]) {
    const res = await fetch(`${server.url}${path}`);
    assert.equal(res.status, 200, path);
    assert.equal(res.headers.get('content-type'), type);
    assert.match(res.headers.get('cache-control') ?? '', /immutable/);
    expectIsolated(res, path);
    const etag = res.headers.get('etag')!;
    assert.match(etag, /^"[0-9a-f]+"$/);
    assert.ok((await res.arrayBuffer()).byteLength > 0);
    const again = await fetch(`${server.url}${path}`, { headers: { 'If-None-Match': etag } });
    assert.equal(again.status, 304);
  }
  // The inference worker loads onnxruntime's wasm from this server, never from a CDN.
  const ort = onnxruntimeWebDist();
  for (const backend of ['wasm', 'webgpu']) {
    const worker = new RegExp(`<meta name="pastiche-worker-${backend}" content="(/assets/worker-${backend}-[A-Z0-9]+\\.js)"`).exec(html)?.[1];
    assert.ok(worker !== undefined, html);
    const code = await (await fetch(`${server.url}${worker}`)).text();
    assert.ok(code.includes(`/ort/`) && code.includes(ort.version), "the wasm path is the server's");
  }
  assert.equal((await fetch(`${server.url}/index.html`)).status, 200);
});

test("onnxruntime-web's wasm runtime is served from node_modules as application/wasm", async () => {
  const ort = onnxruntimeWebDist();
  const files = (await readdir(ort.dir)).filter((name) => /^ort-wasm-simd-threaded.*\.(wasm|mjs)$/.test(name));
  assert.ok(files.includes('ort-wasm-simd-threaded.jsep.wasm'), files.join(', '));
  for (const name of files) {
    const res = await fetch(`${server.url}/ort/${ort.version}/${name}`, { method: 'HEAD' });
    assert.equal(res.status, 200, name);
    assert.equal(res.headers.get('content-type'), name.endsWith('.wasm') ? 'application/wasm' : 'text/javascript; charset=utf-8');
    assert.match(res.headers.get('cache-control') ?? '', /immutable/);
    expectIsolated(res, name);
  }
  // Other files of the package are not served, nor another version's folder.
  for (const path of [`/ort/${ort.version}/ort.min.mjs`, `/ort/${ort.version}/../package.json`, `/ort/0.0.1/ort-wasm-simd-threaded.wasm`]) {
    assert.equal((await fetch(`${server.url}${path}`)).status, 404, path);
  }
});

/** A raw GET, so the path reaches the server exactly as written (fetch would normalise '..'). */
function rawGet(path: string): Promise<{ status: number; headers: Record<string, string | string[] | undefined> }> {
  return new Promise((resolve, reject) => {
    const req = request(`${server.url}/`, { path, method: 'GET' }, (res) => {
      res.resume();
      res.on('end', () => resolve({ status: res.statusCode!, headers: res.headers }));
    });
    req.on('error', reject);
    req.end();
  });
}

test('only listed files are served: path traversal, encoded dots and unknown names get 404', async () => {
  for (const path of ['/assets/../../package.json', '/assets/%2e%2e/%2e%2e/package.json', '/assets/..%2f..%2fpackage.json', '/assets/manifest.json', '/assets/', '/ort/', '/assets/main.ts', '/assets//etc/passwd', '/ort/../package.json', '/web/main.ts']) {
    const res = await rawGet(path);
    assert.ok(res.status === 404 || res.status === 400, `${path}: ${res.status}`);
    assert.equal(res.headers['cross-origin-embedder-policy'], 'require-corp', `${path}: isolation headers on errors too`);
  }
  assert.equal((await fetch(`${server.url}/`, { method: 'POST' })).status, 405);
});

test('API replies carry the isolation headers too', async () => {
  const models = await fetch(`${server.url}/api/models`);
  assert.equal(models.status, 200);
  expectIsolated(models, '/api/models');
  const file = await fetch(`${server.url}/models/zoo.onnx`);
  expectIsolated(file, '/models/zoo.onnx');
  await file.arrayBuffer();
});

test('the bundle is cached by the hash of its sources: a second server reuses it', async () => {
  const folders = await readdir(`${storeDir()}/web`);
  assert.equal(folders.filter((name) => !name.includes('.tmp-')).length, 1, folders.join(', '));
  const second = await serve();
  try {
    assert.equal((await fetch(`${second.url}/`)).status, 200);
    assert.deepEqual(await readdir(`${storeDir()}/web`), folders);
  } finally {
    await second.close();
  }
});

test("a model's thumbnail is the drawn scene stylised by it, made once and then revalidated by ETag", async () => {
  const res = await fetch(`${server.url}/api/models/zoo/thumbnail`);
  assert.equal(res.status, 200, await res.clone().text());
  assert.equal(res.headers.get('content-type'), 'image/png');
  const { data, info } = await sharp(Buffer.from(await res.arrayBuffer())).removeAlpha().raw().toBuffer({ resolveWithObject: true });
  assert.deepEqual([info.width, info.height], [THUMBNAIL_WIDTH, THUMBNAIL_HEIGHT]);
  const expected = await stylizeImage(await openStyleModel('zoo', { threads: 1 }), thumbnailScene());
  assert.ok(psnr(hwcToChw(data, info.height, info.width), expected.data) > 40);
  const again = await fetch(`${server.url}/api/models/zoo/thumbnail`, { headers: { 'If-None-Match': res.headers.get('etag')! } });
  assert.equal(again.status, 304);
  assert.equal((await fetch(`${server.url}/api/models/nothing/thumbnail`)).status, 404);
  assert.equal((await fetch(`${server.url}/api/models/..%2Fzoo/thumbnail`)).status, 400);
});
