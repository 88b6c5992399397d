/** A pastiche server on a free port over a scratch model store holding the zoo-like model as 'zoo'. */
import { writeFile } from 'node:fs/promises';
import sharp from 'sharp';
import { startServer, type PasticheServer, type ServeOptions } from '../../src/server/app.js';
import { importModel } from '../../src/weights/store.js';
import { scratch } from '../helpers/files.js';
import { zooLikeModel } from '../helpers/models.js';

export type Scratch = Awaited<ReturnType<typeof scratch>>;

/** A scratch folder with PASTICHE_HOME pointing into it and the zoo-like model imported as 'zoo'. */
export async function scratchStore(prefix: string): Promise<Scratch> {
  const dir = await scratch(prefix);
  process.env.PASTICHE_HOME = dir.path('home');
  await writeFile(dir.path('zoo.onnx'), zooLikeModel());
  await importModel(dir.path('zoo.onnx'), { name: 'zoo' });
  return dir;
}

/** Starts a server on port 0; `log` lines are collected rather than printed. */
export async function serve(options: ServeOptions = {}): Promise<PasticheServer & { logged: string[] }> {
  const logged: string[] = [];
  const server = await startServer({ port: 0, log: (line) => logged.push(line), runtime: { threads: 1 }, ...options });
  return Object.assign(server, { logged });
}

/** A `width` x `height` PNG of a smooth gradient (distinct values, so a misplaced pixel shows). */
export async function gradientPng(width: number, height: number, format: 'png' | 'jpeg' | 'webp' = 'png'): Promise<Buffer> {
  const data = Buffer.alloc(width * height * 3);
  for (let y = 0; y < height; y++) {
    for (let x = 0; x < width; x++) {
      const i = (y * width + x) * 3;
      data[i] = (x * 255) / Math.max(1, width - 1);
      data[i + 1] = (y * 255) / Math.max(1, height - 1);
      data[i + 2] = 128;
    }
  }
  return sharp(data, { raw: { width, height, channels: 3 } }).toFormat(format).toBuffer();
}
