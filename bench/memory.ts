/**
 * Peak memory (max RSS) and time for a 4000x3000 photo stylised with automatic tiling, measured in
 * a fresh child process so nothing else in the benchmark inflates it.
 */
import { execFileSync } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import sharp from 'sharp';
import { table } from './util.js';

export async function benchMemory(dataDir: string): Promise<void> {
  const dir = await mkdtemp(join(tmpdir(), 'pastiche-bench-'));
  try {
    const input = join(dir, 'big.jpg');
    await sharp(join(dataDir, 'images/content/tubingen.jpg')).resize(4000, 3000, { fit: 'fill' }).jpeg({ quality: 90 }).toFile(input);
    const child = fileURLToPath(new URL('./memory-child.ts', import.meta.url));
    const out = execFileSync(process.execPath, ['--import', 'tsx', child, join(dataDir, 'models/fast-style/la_muse'), input, join(dir, 'big-out.jpg')], { encoding: 'utf8' });
    const result = JSON.parse(out) as { maxRssMiB: number; seconds: number; tiles: number };
    console.log('\n## Memory: 4000x3000 JPEG, automatic tiling, 2 threads\n');
    console.log(table(['image', 'tiles', 'seconds', 'peak RSS MiB'], [['4000x3000', result.tiles, result.seconds.toFixed(1), result.maxRssMiB.toFixed(0)]]));
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}
