/**
 * Downloads against a local HTTP server on 127.0.0.1: complete, resumed (Range honoured), restarted
 * (Range ignored, or the .part already complete), cancelled then resumed, corrupted (checksum),
 * offline; and resolveVggWeights' order: --vgg / PASTICHE_VGG, the cached zoo file, a download
 * from PASTICHE_ZOO_URL.
 */
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { mkdir, readFile, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { download, resolveVggWeights, weightsDir } from '../../src/weights/download.js';
import { zooEntry } from '../../src/weights/zoo.js';
import { AbortError } from '../../src/util/errors.js';
import { scratch } from '../helpers/files.js';

const content = randomBytes(256 * 1024);
const sha256 = createHash('sha256').update(content).digest('hex');
const md5 = createHash('md5').update(content).digest('hex');

/** How the server behaves for the next requests; every request is logged. */
const server = {
  mode: 'ranges' as 'ranges' | 'ignore-ranges' | 'corrupt' | 'not-found',
  requests: [] as { url: string; range?: string }[],
};

function respond(req: IncomingMessage, res: ServerResponse): void {
  server.requests.push({ url: req.url ?? '', range: req.headers.range });
  if (server.mode === 'not-found') {
    res.writeHead(404).end('no');
    return;
  }
  const body = server.mode === 'corrupt' ? Buffer.from(content).fill(0, 1000, 1010) : content;
  const range = /^bytes=(\d+)-$/.exec(req.headers.range ?? '');
  let start = 0;
  if (range && server.mode === 'ranges') {
    start = Number(range[1]);
    if (start >= body.length) {
      res.writeHead(416, { 'Content-Range': `bytes */${body.length}` }).end();
      return;
    }
    res.writeHead(206, { 'Content-Range': `bytes ${start}-${body.length - 1}/${body.length}`, 'Content-Length': body.length - start });
  } else {
    res.writeHead(200, { 'Content-Length': body.length });
  }
  // Several chunks, so progress is reported more than once and a cancel can land midway.
  const chunks: Buffer[] = [];
  for (let at = start; at < body.length; at += 16 * 1024) chunks.push(body.subarray(at, Math.min(at + 16 * 1024, body.length)));
  const next = (): void => {
    const chunk = chunks.shift();
    if (!chunk || res.destroyed) {
      res.end();
      return;
    }
    res.write(chunk, () => setTimeout(next, 2));
  };
  next();
}

const http = createServer(respond);
await new Promise<void>((resolve) => http.listen(0, '127.0.0.1', resolve));
const base = `http://127.0.0.1:${(http.address() as AddressInfo).port}`;
after(() => new Promise<void>((resolve) => {
  http.closeAllConnections();
  http.close(() => resolve());
}));

function reset(mode: typeof server.mode): void {
  server.mode = mode;
  server.requests = [];
}

async function exists(path: string): Promise<boolean> {
  return stat(path).then(() => true, () => false);
}

test('a complete download is verified, renamed into place and reports increasing progress', async () => {
  reset('ranges');
  const s = await scratch();
  try {
    const dest = s.path('weights', 'file.bin');
    const progress: [number, number | undefined][] = [];
    const result = await download(`${base}/file.bin`, dest, { checksum: { algorithm: 'sha256', hex: sha256 }, onProgress: (r, t) => progress.push([r, t]) });
    assert.deepEqual(result, { path: dest, bytes: content.length, resumedFrom: 0 });
    assert.deepEqual(await readFile(dest), content);
    assert.equal(await exists(`${dest}.part`), false);
    assert.deepEqual(server.requests, [{ url: '/file.bin', range: undefined }]);
    assert.ok(progress.length > 1);
    for (let i = 1; i < progress.length; i++) assert.ok(progress[i][0] > progress[i - 1][0]);
    assert.deepEqual(progress[progress.length - 1], [content.length, content.length]);
  } finally {
    await s.cleanup();
  }
});

test('a .part is resumed with a Range request when the server honours it', async () => {
  reset('ranges');
  const s = await scratch();
  try {
    const dest = s.path('file.bin');
    const half = content.length / 2;
    await writeFile(`${dest}.part`, content.subarray(0, half));
    const progress: number[] = [];
    const result = await download(`${base}/file.bin`, dest, { checksum: { algorithm: 'md5', hex: md5 }, onProgress: (r) => progress.push(r) });
    assert.equal(result.resumedFrom, half);
    assert.deepEqual(server.requests, [{ url: '/file.bin', range: `bytes=${half}-` }]);
    assert.ok(progress[0] > half && progress[progress.length - 1] === content.length);
    assert.deepEqual(await readFile(dest), content);
    assert.equal(await exists(`${dest}.part`), false);
  } finally {
    await s.cleanup();
  }
});

test('a server that ignores Range (200) restarts the download cleanly', async () => {
  reset('ignore-ranges');
  const s = await scratch();
  try {
    const dest = s.path('file.bin');
    await writeFile(`${dest}.part`, Buffer.alloc(1000, 7)); // wrong bytes: must not survive
    const result = await download(`${base}/file.bin`, dest, { checksum: { algorithm: 'sha256', prefix: sha256.slice(0, 8) } });
    assert.equal(result.resumedFrom, 0);
    assert.equal(server.requests[0].range, 'bytes=1000-');
    assert.deepEqual(await readFile(dest), content);
  } finally {
    await s.cleanup();
  }
});

test('a .part already as long as the file (416) starts over', async () => {
  reset('ranges');
  const s = await scratch();
  try {
    const dest = s.path('file.bin');
    await writeFile(`${dest}.part`, Buffer.alloc(content.length + 10));
    await download(`${base}/file.bin`, dest, { checksum: { algorithm: 'sha256', hex: sha256 } });
    assert.deepEqual(server.requests.map((r) => r.range), [`bytes=${content.length + 10}-`, undefined]);
    assert.deepEqual(await readFile(dest), content);
  } finally {
    await s.cleanup();
  }
});

test('a cancelled download keeps its .part, and the next run resumes from it', async () => {
  reset('ranges');
  const s = await scratch();
  try {
    const dest = s.path('file.bin');
    const controller = new AbortController();
    await assert.rejects(download(`${base}/file.bin`, dest, {
      checksum: { algorithm: 'sha256', hex: sha256 },
      signal: controller.signal,
      onProgress: (received) => { if (received >= 32 * 1024) controller.abort(); },
    }), AbortError);
    const kept = (await stat(`${dest}.part`)).size;
    assert.ok(kept >= 32 * 1024 && kept < content.length, `kept ${kept}`);
    assert.equal(await exists(dest), false);
    const result = await download(`${base}/file.bin`, dest, { checksum: { algorithm: 'sha256', hex: sha256 } });
    assert.equal(result.resumedFrom, kept);
    assert.equal(server.requests[1].range, `bytes=${kept}-`);
    assert.deepEqual(await readFile(dest), content);
  } finally {
    await s.cleanup();
  }
});

test('corrupted content fails the checksum: clear error, no file at dest and no .part', async () => {
  reset('corrupt');
  const s = await scratch();
  try {
    const dest = s.path('file.bin');
    const url = `${base}/file.bin`;
    await assert.rejects(download(url, dest, { checksum: { algorithm: 'sha256', hex: sha256 } }), (e: Error) =>
      e.message.includes(`Checksum mismatch for ${url}`) && e.message.includes(`expected sha256 ${sha256}`) && /but got sha256 [0-9a-f]{64}/.test(e.message));
    assert.equal(await exists(dest), false);
    assert.equal(await exists(`${dest}.part`), false);
    reset('not-found');
    await assert.rejects(download(url, dest, { checksum: { algorithm: 'md5', hex: md5 } }), /failed: HTTP 404/);
  } finally {
    await s.cleanup();
  }
});

test('PASTICHE_OFFLINE=1 refuses before any request, saying where the file goes', async () => {
  reset('ranges');
  const s = await scratch();
  process.env.PASTICHE_OFFLINE = '1';
  try {
    const dest = s.path('file.bin');
    await assert.rejects(download(`${base}/file.bin`, dest, { checksum: { algorithm: 'md5', hex: md5 } }), (e: Error) => e.message.includes(dest) && /PASTICHE_OFFLINE/.test(e.message));
    assert.deepEqual(server.requests, []);
  } finally {
    delete process.env.PASTICHE_OFFLINE;
    await s.cleanup();
  }
});

test('resolveVggWeights: explicit path, then the cached zoo file, then a download; offline says where to put it', async () => {
  const s = await scratch();
  const saved = { home: process.env.PASTICHE_HOME, vgg: process.env.PASTICHE_VGG, zoo: process.env.PASTICHE_ZOO_URL };
  process.env.PASTICHE_HOME = s.path('home');
  process.env.PASTICHE_ZOO_URL = `${base}/mirror/`;
  delete process.env.PASTICHE_VGG;
  try {
    reset('ranges');
    const local = s.path('my-vgg.h5');
    await writeFile(local, 'x');
    assert.deepEqual(await resolveVggWeights({ vgg: local }), { path: local, origin: 'explicit' });
    process.env.PASTICHE_VGG = local;
    assert.equal((await resolveVggWeights({})).origin, 'explicit');
    await assert.rejects(resolveVggWeights({ vgg: s.path('nope.h5') }), /nope\.h5: no such VGG weights file or folder \(given by --vgg\)/);
    delete process.env.PASTICHE_VGG;

    const entry = zooEntry(19);
    const cached = join(weightsDir(), entry.fileName);
    assert.equal(cached, s.path('home', 'weights', 'vgg19_weights_tf_dim_ordering_tf_kernels_notop.h5'));

    process.env.PASTICHE_OFFLINE = '1';
    await assert.rejects(resolveVggWeights({ depth: 19 }), (e: Error) => e.message.includes(cached) && e.message.includes('--vgg PATH') && e.message.includes('PASTICHE_VGG'));
    delete process.env.PASTICHE_OFFLINE;

    // The mirror serves our random bytes, not Keras's file, so the real md5 must reject them.
    await assert.rejects(resolveVggWeights({ depth: 19 }), (e: Error) => e.message.includes('expected md5 253f8cb515780f3b799900260a226db6'));
    assert.deepEqual(server.requests.map((r) => r.url), ['/mirror/vgg19_weights_tf_dim_ordering_tf_kernels_notop.h5']);
    assert.equal(await exists(cached), false);

    await mkdir(weightsDir(), { recursive: true });
    await writeFile(cached, 'pretend weights');
    process.env.PASTICHE_OFFLINE = '1';
    assert.deepEqual(await resolveVggWeights({ depth: 19 }), { path: cached, origin: 'cache', entry });
    assert.equal(server.requests.length, 1);
    await assert.rejects(resolveVggWeights({ zooId: 'vgg99' }), RangeError);
  } finally {
    for (const [key, value] of [['PASTICHE_HOME', saved.home], ['PASTICHE_VGG', saved.vgg], ['PASTICHE_ZOO_URL', saved.zoo]] as const) {
      if (value === undefined) delete process.env[key];
      else process.env[key] = value;
    }
    delete process.env.PASTICHE_OFFLINE;
    await s.cleanup();
  }
});
