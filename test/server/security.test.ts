/** Who may reach `pastiche serve`: loopback by default, a bearer token when exposed; and `pastiche serve` as a command. */
import assert from 'node:assert/strict';
import { mkdir, readFile, readdir } from 'node:fs/promises';
import { request } from 'node:http';
import { tmpdir } from 'node:os';
import { after, before, test } from 'node:test';
import type { ChildProcess } from 'node:child_process';
import { checkExposure, isLoopback, startServer } from '../../src/server/app.js';
import { runCli } from '../helpers/cli.js';
import { makeClip } from '../video/clips.js';
import { gradientPng, scratchStore, serve, type Scratch } from './harness.js';

let dir: Scratch;
const TOKEN = 'correct-horse-battery-staple-42';

before(async () => {
  dir = await scratchStore('pastiche-server-security-');
});

after(async () => {
  await dir.cleanup();
});

test('loopback addresses are told apart from exposed ones', () => {
  for (const host of ['127.0.0.1', '127.3.2.1', '::1', 'localhost']) assert.ok(isLoopback(host), host);
  for (const host of ['0.0.0.0', '::', '192.168.1.4', 'example.com', '127.0.0.1.example.com']) assert.ok(!isLoopback(host), host);
});

test('an exposed host without a token, or a short token, is refused before listening', async () => {
  assert.throws(() => checkExposure('0.0.0.0', undefined), /Expected --token with --host 0.0.0.0/);
  assert.throws(() => checkExposure('127.0.0.1', 'short'), /at least 16 characters/);
  await assert.rejects(startServer({ host: '0.0.0.0', port: 0 }), RangeError);
  assert.doesNotThrow(() => checkExposure('0.0.0.0', TOKEN));
});

test('with a token every /api and /models request needs it (401 otherwise)', async () => {
  const server = await serve({ token: TOKEN });
  try {
    const auth = { Authorization: `Bearer ${TOKEN}` };
    for (const path of ['/api/models', '/models/zoo.onnx', '/api/jobs/00000000-0000-0000-0000-000000000000', '/api/nothing']) {
      for (const headers of [{} as Record<string, string>, { Authorization: 'Bearer wrong-token-of-some-length' }, { Authorization: TOKEN }]) {
        const res = await fetch(`${server.url}${path}`, { headers });
        assert.equal(res.status, 401, `${path} ${JSON.stringify(headers)}`);
        assert.equal(res.headers.get('www-authenticate'), 'Bearer');
      }
    }
    const refused = await fetch(`${server.url}/api/stylize?model=zoo`, { method: 'POST', body: new Uint8Array(await gradientPng(16, 16)) });
    assert.equal(refused.status, 401);
    assert.equal((await fetch(`${server.url}/api/models`, { headers: auth })).status, 200);
    assert.equal((await fetch(`${server.url}/models/zoo.onnx`, { headers: auth })).status, 200);
    const ok = await fetch(`${server.url}/api/stylize?model=zoo`, { method: 'POST', body: new Uint8Array(await gradientPng(16, 16)), headers: auth });
    assert.equal(ok.status, 200);
  } finally {
    await server.close();
  }
});

test('`pastiche serve --host 0.0.0.0` without --token exits 2 with the reason; --help states the defaults', async () => {
  const refused = await runCli(['serve', '--host', '0.0.0.0', '--port', '0'], { env: { PASTICHE_HOME: dir.path('home'), PASTICHE_TOKEN: undefined } });
  assert.equal(refused.code, 2);
  assert.match(refused.stderr, /Expected --token with --host 0\.0\.0\.0/);
  const help = await runCli(['serve', '--help']);
  assert.equal(help.code, 0);
  const blocks = help.stdout.split(/\n(?=  -)/);
  for (const flag of ['--port', '--host', '--token', '--max-upload', '--max-concurrent']) {
    assert.match(blocks.find((b) => b.trimStart().startsWith(flag)) ?? '', /default/, flag);
  }
  const bad = await runCli(['serve', '--port', '70000']);
  assert.equal(bad.code, 2);
  assert.match(bad.stderr, /Expected a number between 0 and 65535 for --port but received 70000/);
});

/** Resolves with the URL once the child prints its listening line. */
function listening(child: ChildProcess): Promise<string> {
  return new Promise((resolve, reject) => {
    let text = '';
    child.stderr!.on('data', (c: Buffer) => {
      text += c.toString();
      const url = /listening on (http:\/\/[^\s;]+)/.exec(text)?.[1];
      if (url !== undefined) resolve(url);
    });
    child.on('close', () => reject(new Error(`serve exited early: ${text}`)));
  });
}

test('SIGTERM mid-job: `pastiche serve` cancels its work, removes its files and exits 143', async () => {
  const tmp = dir.path('tmp');
  await mkdir(tmp);
  const clip = await readFile(await makeClip(dir.dir, 'clip.mp4', { size: '320x240', rate: '25', seconds: 8, audio: false }));
  let url: Promise<string> | undefined;
  let child: ChildProcess | undefined;
  const run = runCli(['serve', '--port', '0', '--max-upload', '64', '--max-concurrent', '1', '--token', TOKEN, '--threads', '1'], {
    env: { PASTICHE_HOME: dir.path('home'), TMPDIR: tmp },
    onSpawn: (c) => {
      child = c;
      url = listening(c);
    },
  });
  const base = await url!;
  const auth = { Authorization: `Bearer ${TOKEN}` };
  const uploaded = (await (await fetch(`${base}/api/uploads`, { method: 'POST', body: new Uint8Array(clip), headers: auth })).json()) as { id: string };
  const job = await fetch(`${base}/api/jobs`, { method: 'POST', headers: { ...auth, 'Content-Type': 'application/json' }, body: JSON.stringify({ kind: 'video', input: uploaded.id, model: 'zoo' }) });
  assert.equal(job.status, 202);
  // A stylize upload left hanging, so a request is in flight too.
  const { port } = new URL(base);
  const stalled = request({ host: '127.0.0.1', port, method: 'POST', path: '/api/stylize?model=zoo', headers: { ...auth, 'Content-Length': '100000' } });
  stalled.on('error', () => undefined);
  stalled.write(Buffer.alloc(1000));
  await new Promise((resolve) => setTimeout(resolve, 500));
  // tsx keeps a cache of its own in TMPDIR; the server's files are in one folder beside it.
  const served = async () => (await readdir(tmp)).filter((name) => name.startsWith('pastiche-'));
  assert.equal((await served()).length, 1, 'the server keeps its files in one folder under TMPDIR');
  child!.kill('SIGTERM');
  const result = await run;
  stalled.destroy();
  assert.equal(result.code, 143, result.stderr);
  assert.deepEqual(await served(), [], 'nothing left behind');
});

test('pages from other origins and, without a token, non-loopback Host names are refused (DNS rebinding)', async () => {
  const server = await serve();
  try {
    const get = (headers: Record<string, string>) => new Promise<number>((resolve, reject) => {
      const req = request({ host: '127.0.0.1', port: server.port, path: '/api/models', headers }, (res) => {
        res.resume();
        resolve(res.statusCode ?? 0);
      });
      req.on('error', reject);
      req.end();
    });
    assert.equal(await get({ Host: 'evil.example:8080' }), 403);
    assert.equal(await get({ Origin: 'http://evil.example' }), 403);
    assert.equal(await get({ Origin: `http://127.0.0.1:${server.port}` }), 200);
    assert.equal(await get({ Host: `localhost:${server.port}` }), 200);
    assert.equal(await get({ Host: `[::1]:${server.port}` }), 200);
  } finally {
    await server.close();
  }
});

test('a port already taken is an error naming it, and leaves no temporary folder', async () => {
  const server = await serve();
  try {
    const tmp = await readdir(tmpdir());
    await assert.rejects(startServer({ port: server.port }), /EADDRINUSE/);
    assert.deepEqual((await readdir(tmpdir())).filter((n) => n.startsWith('pastiche-serve-') && !tmp.includes(n)), []);
  } finally {
    await server.close();
  }
});
