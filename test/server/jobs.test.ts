/** Jobs over HTTP: uploads, a video job with progress events and a result, cancellation, retention, a full queue. */
import assert from 'node:assert/strict';
import { readFile, readdir, writeFile } from 'node:fs/promises';
import { setTimeout as sleep } from 'node:timers/promises';
import { after, before, test } from 'node:test';
import sharp from 'sharp';
import { probeVideo } from '../../src/video/index.js';
import { dataPath } from '../helpers/data.js';
import { makeClip } from '../video/clips.js';
import { scratchStore, serve, type Scratch } from './harness.js';

let dir: Scratch;
let shortClip: Uint8Array<ArrayBuffer>;
let longClip: Uint8Array<ArrayBuffer>;

before(async () => {
  dir = await scratchStore('pastiche-server-jobs-');
  shortClip = new Uint8Array(await readFile(await makeClip(dir.dir, 'short.mp4', { size: '64x48', rate: '10', seconds: 1 })));
  longClip = new Uint8Array(await readFile(await makeClip(dir.dir, 'long.mp4', { size: '320x240', rate: '25', seconds: 8, audio: false })));
});

after(async () => {
  await dir.cleanup();
});

type Server = Awaited<ReturnType<typeof serve>>;

async function upload(server: Server, body: Uint8Array<ArrayBuffer>): Promise<string> {
  const res = await fetch(`${server.url}/api/uploads`, { method: 'POST', body });
  assert.equal(res.status, 201);
  const { id, bytes } = (await res.json()) as { id: string; bytes: number };
  assert.equal(bytes, body.length);
  return id;
}

async function submit(server: Server, job: Record<string, unknown>): Promise<Response> {
  return fetch(`${server.url}/api/jobs`, { method: 'POST', headers: { 'Content-Type': 'application/json' }, body: JSON.stringify(job) });
}

async function videoJob(server: Server, clip: Uint8Array<ArrayBuffer>, extra: Record<string, unknown> = {}): Promise<string> {
  const res = await submit(server, { kind: 'video', input: await upload(server, clip), model: 'zoo', ...extra });
  assert.equal(res.status, 202, await res.clone().text());
  const { id, state } = (await res.json()) as { id: string; state: string };
  assert.ok(['queued', 'running'].includes(state));
  assert.equal(res.headers.get('location'), `/api/jobs/${id}`);
  return id;
}

/** Reads a job's server-sent events until the stream ends, calling `onEvent` with each. */
async function events(server: Server, id: string, onEvent: (name: string, data: { state: string; progress: { done: number } | null }) => void = () => undefined) {
  const res = await fetch(`${server.url}/api/jobs/${id}/events`);
  assert.equal(res.status, 200);
  assert.match(res.headers.get('content-type') ?? '', /text\/event-stream/);
  const seen: { name: string; data: { state: string; progress: { done: number } | null } }[] = [];
  let text = '';
  for await (const chunk of res.body as unknown as AsyncIterable<Uint8Array>) {
    text += Buffer.from(chunk).toString();
    let end: number;
    while ((end = text.indexOf('\n\n')) >= 0) {
      const block = text.slice(0, end);
      text = text.slice(end + 2);
      const name = /^event: (.+)$/m.exec(block)?.[1];
      const data = /^data: (.+)$/m.exec(block)?.[1];
      if (name === undefined || data === undefined) continue;
      const event = { name, data: JSON.parse(data) };
      seen.push(event);
      onEvent(event.name, event.data);
    }
  }
  return seen;
}

test('a video job: progress events, status, the result as an MP4, removed after its retention time', async () => {
  const server = await serve({ limits: { jobRetentionMs: 1500 } });
  try {
    const id = await videoJob(server, shortClip, { strength: 0.5, size: 32 });
    const seen = await events(server, id);
    const last = seen.at(-1)!;
    assert.equal(last.name, 'end');
    assert.equal(last.data.state, 'done', JSON.stringify(last.data));
    const status = (await (await fetch(`${server.url}/api/jobs/${id}`)).json()) as { state: string; result: { type: string; bytes: number }; progress: { done: number; unit: string } };
    assert.equal(status.state, 'done');
    assert.equal(status.result.type, 'video/mp4');
    assert.equal(status.progress.unit, 'frames');
    const res = await fetch(`${server.url}/api/jobs/${id}/result`);
    assert.equal(res.status, 200);
    assert.equal(res.headers.get('content-type'), 'video/mp4');
    const bytes = new Uint8Array(await res.arrayBuffer());
    assert.equal(bytes.length, status.result.bytes);
    await writeFile(dir.path('result.mp4'), bytes);
    const info = await probeVideo(dir.path('result.mp4'));
    assert.deepEqual([info.width, info.height], [32, 24]);
    await sleep(2000);
    assert.equal((await fetch(`${server.url}/api/jobs/${id}`)).status, 404);
    assert.deepEqual(await readdir(server.dir), [], 'the job, its result and its upload are gone');
  } finally {
    await server.close();
  }
});

test('cancelling a running job and a queued one leaves no files', async () => {
  const server = await serve({ limits: { maxRunningJobs: 1 } });
  try {
    const running = await videoJob(server, longClip);
    const queued = await videoJob(server, shortClip);
    assert.equal(((await (await fetch(`${server.url}/api/jobs/${queued}`)).json()) as { state: string }).state, 'queued');
    const cancelledQueued = await fetch(`${server.url}/api/jobs/${queued}`, { method: 'DELETE' });
    assert.equal(cancelledQueued.status, 200);
    assert.equal(((await cancelledQueued.json()) as { state: string }).state, 'cancelled');
    let cancelling: Promise<Response> | undefined;
    const seen = await events(server, running, (name, data) => {
      if (cancelling === undefined && (data.progress?.done ?? 0) >= 2) cancelling = fetch(`${server.url}/api/jobs/${running}`, { method: 'DELETE' });
    });
    assert.ok(cancelling, 'progress was reported');
    assert.equal((await cancelling).status, 200);
    assert.equal(seen.at(-1)!.data.state, 'cancelled');
    assert.equal((await fetch(`${server.url}/api/jobs/${running}/result`)).status, 409);
    assert.deepEqual(await readdir(server.dir), []);
  } finally {
    await server.close();
  }
});

test('a full job queue is 429 with Retry-After; closing the server cancels what runs and removes everything', async () => {
  const server = await serve({ limits: { maxJobs: 1 } });
  const input = await upload(server, shortClip);
  await videoJob(server, longClip);
  const full = await submit(server, { kind: 'video', input, model: 'zoo' });
  assert.equal(full.status, 429);
  assert.ok(full.headers.get('retry-after'));
  await server.close();
  await assert.rejects(readdir(server.dir), /ENOENT/);
});

test('bad job requests are refused with a message', async () => {
  const server = await serve();
  try {
    const input = await upload(server, shortClip);
    const cases: [BodyInit, Record<string, string>, number, RegExp][] = [
      ['{"kind": "video"', { 'Content-Type': 'application/json' }, 400, /malformed JSON/],
      ['[1, 2]', { 'Content-Type': 'application/json' }, 400, /JSON object/],
      ['{"kind": "video"}', { 'Content-Type': 'text/plain' }, 415, /application\/json/],
      [JSON.stringify({ kind: 'paint' }), { 'Content-Type': 'application/json' }, 400, /Expected one of 'video', 'optimize' for kind/],
      [JSON.stringify({ kind: 'video', input, model: 'zoo', strength: 2 }), { 'Content-Type': 'application/json' }, 400, /Expected a number between 0 and 1 for strength but received 2/],
      [JSON.stringify({ kind: 'video', input, model: '../zoo' }), { 'Content-Type': 'application/json' }, 400, /model name/],
      [JSON.stringify({ kind: 'video', input, model: 'zoo', volume: 11 }), { 'Content-Type': 'application/json' }, 400, /volume/],
      [JSON.stringify({ kind: 'video', input: 'no-such-upload', model: 'zoo' }), { 'Content-Type': 'application/json' }, 400, /no upload/],
      [JSON.stringify({ kind: 'video', input: 'x'.repeat(70_000) }), { 'Content-Type': 'application/json' }, 413, /over the limit/],
    ];
    for (const [body, headers, status, message] of cases) {
      const res = await fetch(`${server.url}/api/jobs`, { method: 'POST', body, headers });
      assert.equal(res.status, status, String(body).slice(0, 80));
      assert.match(((await res.json()) as { error: string }).error, message);
    }
    // A job on an upload that is not a video fails with the reason, and keeps nothing.
    const text = await upload(server, new TextEncoder().encode('not a video'));
    const id = await (async () => {
      const res = await submit(server, { kind: 'video', input: text, model: 'zoo' });
      return ((await res.json()) as { id: string }).id;
    })();
    const seen = await events(server, id);
    assert.equal(seen.at(-1)!.data.state, 'failed');
    assert.equal((await fetch(`${server.url}/api/jobs/${id}/result`)).status, 409);
    for (const path of [`/api/jobs/${'0'.repeat(8)}-0000-0000-0000-${'0'.repeat(12)}`, '/api/jobs/abc/events', '/api/jobs/abc/result']) {
      assert.equal((await fetch(`${server.url}${path}`)).status, 404, path);
    }
  } finally {
    await server.close();
  }
});

const vggDir = dataPath('models/vgg19-imagenet-tfjs-uint8');
const styleImage = dataPath('images/style/blue_swirls.jpg');
const contentImage = dataPath('images/content/face.jpg');

test('an optimize job: previews while it runs, a PNG of the asked size at the end', { skip: vggDir.skip || styleImage.skip || contentImage.skip }, async () => {
  const previous = process.env.PASTICHE_VGG;
  process.env.PASTICHE_VGG = vggDir.path;
  const server = await serve();
  try {
    const style = await upload(server, new Uint8Array(await readFile(styleImage.path)));
    const content = await upload(server, new Uint8Array(await readFile(contentImage.path)));
    const res = await submit(server, { kind: 'optimize', content, style, size: 48, iterations: 6, previewEvery: 2 });
    assert.equal(res.status, 202, await res.clone().text());
    const { id } = (await res.json()) as { id: string };
    let previews = 0;
    const seen = await events(server, id, (_name, data) => {
      if ((data as { preview?: unknown }).preview !== undefined) previews++;
    });
    const last = seen.at(-1)!.data as { state: string; error?: string; preview?: { version: number } };
    assert.equal(last.state, 'done', last.error);
    assert.ok(previews > 0 && (last.preview?.version ?? 0) >= 2, 'previews were published');
    const preview = await fetch(`${server.url}/api/jobs/${id}/preview`);
    assert.equal(preview.status, 200);
    assert.equal(preview.headers.get('content-type'), 'image/png');
    await preview.arrayBuffer();
    const result = await fetch(`${server.url}/api/jobs/${id}/result`);
    assert.equal(result.status, 200);
    const meta = await sharp(Buffer.from(await result.arrayBuffer())).metadata();
    assert.equal(meta.format, 'png');
    assert.equal(Math.max(meta.width ?? 0, meta.height ?? 0), 48);
    // A missing style upload is refused before queueing, and the content upload stays for a retry.
    const again = await upload(server, new Uint8Array(await readFile(contentImage.path)));
    const refused = await submit(server, { kind: 'optimize', content: again, style: 'gone' });
    assert.equal(refused.status, 400);
    assert.match(((await refused.json()) as { error: string }).error, /no upload/);
    const retried = await submit(server, { kind: 'optimize', content: again, style: again, iterations: 0 });
    assert.equal(retried.status, 400, 'iterations 0 is refused');
  } finally {
    await server.close();
    if (previous === undefined) delete process.env.PASTICHE_VGG;
    else process.env.PASTICHE_VGG = previous;
  }
});
