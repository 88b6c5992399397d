/**
 * Video end to end (decode → stylise → encode, audio kept) against pure inference on the same
 * frames in memory: the pipeline should cost little beyond the network itself.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { execFileSync } from 'node:child_process';
import { openStyleModel } from '../src/style/model.js';
import { stylizeImage, stylizeVideo } from '../src/style/transfer.js';
import { ffmpegPath } from '../src/video/index.js';
import { decodeFrames } from '../src/video/index.js';
import { toRgbImage } from '../src/image/pixels.js';
import { table, time } from './util.js';

export async function benchVideo(dataDir: string, threads: number): Promise<void> {
  const dir = await mkdtemp(join(tmpdir(), 'pastiche-bench-'));
  try {
    const size = 360;
    const seconds = 4;
    const clip = join(dir, 'fox.mp4');
    // A 4 s excerpt of the shared clip with a sine audio track added, so audio is carried too.
    execFileSync(ffmpegPath(), ['-v', 'error', '-i', join(dataDir, 'video/fox.mp4'), '-f', 'lavfi', '-i', 'sine=frequency=440',
      '-t', String(seconds), '-vf', `scale=${size}:${size}`, '-c:v', 'libx264', '-pix_fmt', 'yuv420p', '-c:a', 'aac', '-shortest', clip]);
    const style = await openStyleModel(join(dataDir, 'models/fast-style/la_muse'), { threads });
    const rows: (string | number)[][] = [];
    for (const margin of [0, 32]) {
      let first: Uint8Array | undefined;
      for await (const frame of decodeFrames(clip)) { first = frame; break; }
      const image = toRgbImage(first!, size, size);
      const pure = await time(() => stylizeImage(style, image, { margin }), 9, 2);
      const result = await stylizeVideo(style, clip, join(dir, `out-${margin}.mp4`), { margin });
      const endToEnd = result.frames / result.seconds;
      const inference = 1000 / pure.medianMs;
      rows.push([`${size}x${size}`, margin, result.frames, inference.toFixed(1), endToEnd.toFixed(1), `${((endToEnd / inference) * 100).toFixed(0)} %`]);
    }
    console.log(`\n## Video end to end (fox.mp4 excerpt, ${seconds} s, H.264 + AAC, ${threads} threads)\n`);
    console.log(table(['frame size', 'margin px', 'frames', 'inference-only fps', 'end-to-end fps', 'end-to-end / inference'], rows));
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}
