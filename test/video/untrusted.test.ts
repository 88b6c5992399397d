/**
 * Videos from strangers: a `.mp4` that is really an HLS playlist (or a concat list, a DASH
 * manifest) naming a local file is refused before ffmpeg opens it, by the library and the CLI,
 * and the file it names is never read.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdir, writeFile } from 'node:fs/promises';
import { existsSync } from 'node:fs';
import { FileError } from '../../src/util/errors.js';
import { decodeFrames } from '../../src/video/decode.js';
import { inputArgs, probeVideo } from '../../src/video/ffmpeg.js';
import { processVideo } from '../../src/video/pipeline.js';
import { runCli } from '../helpers/cli.js';
import { listTree, scratch } from '../helpers/files.js';
import { zooLikeModel } from '../helpers/models.js';
import { makeClip } from './clips.js';

let dir: Awaited<ReturnType<typeof scratch>>;
let secret: string;
let zoo: string;

before(async () => {
  dir = await scratch('pastiche-video-untrusted-');
  // A real video stands for the private file: if ffmpeg follows the playlist, the run succeeds with it.
  secret = await makeClip(dir.dir, 'secret.mp4', { size: '64x48', seconds: 1, audio: false });
  zoo = dir.path('zoo.onnx');
  await writeFile(zoo, zooLikeModel());
});

after(async () => {
  await dir.cleanup();
});

const lists: { name: string; text: () => string; what: RegExp }[] = [
  { name: 'an HLS playlist', text: () => `#EXTM3U\n#EXT-X-TARGETDURATION:10\n#EXTINF:10,\n${secret}\n#EXT-X-ENDLIST\n`, what: /is an HLS playlist, not a video/ },
  { name: 'an HLS playlist after a BOM and blank lines', text: () => `\ufeff\n\n#EXTM3U\n#EXTINF:10,\n${secret}\n`, what: /is an HLS playlist, not a video/ },
  { name: 'a concat list', text: () => `ffconcat version 1.0\nfile '${secret}'\n`, what: /is an ffmpeg concat list, not a video/ },
  { name: 'a DASH manifest', text: () => `<?xml version="1.0"?>\n<MPD xmlns="urn:mpeg:dash:schema:mpd:2011"></MPD>\n`, what: /is a DASH manifest, not a video/ },
];

for (const { name, text, what } of lists) {
  test(`probeVideo and decodeFrames refuse ${name} named .mp4`, async () => {
    const path = dir.path(`${name.replace(/ /g, '-')}.mp4`);
    await writeFile(path, text());
    await assert.rejects(probeVideo(path), (error: Error) => error instanceof FileError && what.test(error.message) && error.message.startsWith(path));
    await assert.rejects(async () => {
      for await (const frame of decodeFrames(path)) void frame;
    }, what);
  });
}

test('pastiche stylize refuses an HLS playlist named .mp4: exit 1, one line, nothing written', async () => {
  const playlist = dir.path('upload.mp4');
  await writeFile(playlist, lists[0]!.text());
  const out = dir.path('out');
  const r = await runCli(['stylize', playlist, '-m', zoo, '-o', `${out}/styled.mp4`], { env: { PASTICHE_HOME: dir.path('home') } });
  assert.equal(r.code, 1, `exit ${r.code}\n${r.stderr}`);
  assert.deepEqual(r.errorLines, [`pastiche: ${playlist}: is an HLS playlist, not a video: files that name other files are refused`]);
  assert.ok(!existsSync(out) || (await listTree(out)).length === 0);
});

test('ffmpeg reads inputs only from local files and pipes', () => {
  assert.deepEqual(inputArgs('a.mp4'), ['-protocol_whitelist', 'file,pipe', '-i', 'a.mp4']);
});

test('a video\'s -o: a folder is written into; an unwritable container is refused before the model loads', async () => {
  const clip = await makeClip(dir.dir, 'clip.mp4', { size: '32x24', seconds: 0.2, audio: false });
  const env = { PASTICHE_HOME: dir.path('home') };
  const into = dir.path('into');
  await mkdir(into);
  const r = await runCli(['stylize', clip, '-m', zoo, '-o', into], { env });
  assert.equal(r.code, 0, r.stderr);
  assert.deepEqual(await listTree(into), ['clip-zoo.mp4']);
  const slash = dir.path('made', 'below');
  const r2 = await runCli(['stylize', clip, '-m', zoo, '-o', `${slash}/`], { env });
  assert.equal(r2.code, 0, r2.stderr);
  assert.deepEqual(await listTree(slash), ['clip-zoo.mp4']);
  // A missing model would be the error if the output were checked after loading it.
  const avi = dir.path('never', 'out.avi');
  const r3 = await runCli(['stylize', clip, '-m', dir.path('no-such-model.onnx'), '-o', avi], { env });
  assert.equal(r3.code, 1, r3.stderr);
  assert.deepEqual(r3.errorLines, [`pastiche: ${avi}: unsupported video container '.avi' (use .mp4, .m4v, .mov, .mkv)`]);
  assert.ok(!existsSync(dir.path('never')));
});

test('a video run that fails while encoding leaves no folder it made', async () => {
  const clip = await makeClip(dir.dir, 'clip2.mp4', { size: '32x24', seconds: 0.2, audio: false });
  const out = dir.path('fails', 'deep', 'out.mp4');
  await assert.rejects(processVideo({ input: clip, output: out, transform: () => new Uint8Array(5) }), /Expected transform to return an RGB24 frame/);
  assert.ok(!existsSync(dir.path('fails')), 'the folders made for the output are gone');
});
