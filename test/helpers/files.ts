/** Scratch folders and hand-made bad inputs (broken checkpoints, huge-but-tiny PNGs) for the style, weights and CLI tests. */
import { createHash } from 'node:crypto';
import { cp, mkdtemp, readFile, readdir, readlink, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, relative } from 'node:path';
import { deflateSync } from 'node:zlib';

/** A fresh folder in the OS temp dir and a function that removes it. */
export async function scratch(prefix = 'pastiche-test-'): Promise<{ dir: string; path: (...parts: string[]) => string; cleanup: () => Promise<void> }> {
  const dir = await mkdtemp(join(tmpdir(), prefix));
  return { dir, path: (...parts) => join(dir, ...parts), cleanup: () => rm(dir, { recursive: true, force: true }) };
}

/** Every file under `dir`, recursively, as sorted paths relative to it ('/'-separated). */
export async function listTree(dir: string): Promise<string[]> {
  const entries = await readdir(dir, { recursive: true, withFileTypes: true }).catch(() => []);
  return entries
    .filter((e) => e.isFile())
    .map((e) => relative(dir, join(e.parentPath, e.name)).split('\\').join('/'))
    .sort();
}

/**
 * Everything under `dir` by relative path: a file's SHA-256, a symlink's target, 'folder' for a
 * folder. Equal snapshots before and after a run mean nothing was changed, added or removed.
 */
export async function snapshotTree(dir: string): Promise<Record<string, string>> {
  const entries = await readdir(dir, { recursive: true, withFileTypes: true });
  const snapshot: Record<string, string> = {};
  for (const e of entries) {
    const path = join(e.parentPath, e.name);
    const rel = relative(dir, path).split('\\').join('/');
    if (e.isSymbolicLink()) snapshot[rel] = `-> ${await readlink(path)}`;
    else if (e.isFile()) snapshot[rel] = createHash('sha256').update(await readFile(path)).digest('hex');
    else if (e.isDirectory()) snapshot[rel] = 'folder';
  }
  return snapshot;
}

/** Temporary files pastiche's atomic writers leave behind if they fail to clean up. */
export function tempLeftovers(files: readonly string[]): string[] {
  return files.filter((f) => /(^|\/)\..*pastiche-tmp/.test(f));
}

/** Copies a checkpoint folder (manifest.json + variable files) so a test may damage the copy. */
export async function copyCheckpoint(from: string, to: string): Promise<string> {
  await cp(from, to, { recursive: true });
  return to;
}

/** Rewrites a checkpoint copy's manifest.json through `edit`. */
export async function editManifest(dir: string, edit: (manifest: Record<string, { filename: string; shape: number[] }>) => void): Promise<void> {
  const path = join(dir, 'manifest.json');
  const manifest = JSON.parse(await readFile(path, 'utf8')) as Record<string, { filename: string; shape: number[] }>;
  edit(manifest);
  await writeFile(path, JSON.stringify(manifest));
}

const CRC_TABLE = Int32Array.from({ length: 256 }, (_, n) => {
  let c = n;
  for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
  return c;
});

function crc32(bytes: Uint8Array): number {
  let c = -1;
  for (const b of bytes) c = CRC_TABLE[(c ^ b) & 0xff] ^ (c >>> 8);
  return (c ^ -1) >>> 0;
}

function pngChunk(type: string, data: Buffer): Buffer {
  const body = Buffer.concat([Buffer.from(type, 'latin1'), data]);
  const head = Buffer.alloc(4);
  head.writeUInt32BE(data.length);
  const tail = Buffer.alloc(4);
  tail.writeUInt32BE(crc32(body));
  return Buffer.concat([head, body, tail]);
}

/** Adam7's seven passes: first column, first row, column step, row step. */
const ADAM7 = [[0, 0, 8, 8], [4, 0, 8, 8], [0, 4, 4, 8], [2, 0, 4, 4], [0, 2, 2, 4], [1, 0, 2, 2], [0, 1, 1, 2]] as const;

/** Bytes of 1-bit scanlines (a filter byte each) for a `width` x `height` image, pass by pass when interlaced. */
function solidRowBytes(width: number, height: number, interlaced: boolean): number {
  const rows = (w: number, h: number): number => (w > 0 && h > 0 ? h * (1 + Math.ceil(w / 8)) : 0);
  if (!interlaced) return rows(width, height);
  return ADAM7.reduce((sum, [x0, y0, dx, dy]) => sum + rows(Math.ceil((width - x0) / dx), Math.ceil((height - y0) / dy)), 0);
}

/**
 * Writes a valid, solid black 1-bit greyscale PNG of any size. Its pixels compress to almost
 * nothing (17000x16000 is ~33 kB), so it can exceed sharp's pixel limit without costing disk.
 * `interlaced` writes Adam7, which decoders cannot stream: libvips decodes it whole even when asked
 * for a small size.
 */
export async function writeSolidPng(path: string, width: number, height: number, options: { interlaced?: boolean } = {}): Promise<void> {
  const interlaced = options.interlaced === true;
  const header = Buffer.alloc(13);
  header.writeUInt32BE(width, 0);
  header.writeUInt32BE(height, 4);
  header[8] = 1; // bit depth
  header[9] = 0; // greyscale
  header[12] = interlaced ? 1 : 0;
  const rows = Buffer.alloc(solidRowBytes(width, height, interlaced)); // filter byte 0 + zero bits per row
  await writeFile(path, Buffer.concat([
    Buffer.from('\x89PNG\r\n\x1a\n', 'latin1'),
    pngChunk('IHDR', header),
    pngChunk('IDAT', deflateSync(rows, { level: 9 })),
    pngChunk('IEND', Buffer.alloc(0)),
  ]));
}

/**
 * Damages a file in the middle, as a bad sector or a broken transfer does: `length` bytes from
 * `at` (a fraction of the file) are overwritten with a fixed pseudo-random pattern. The size is kept.
 */
export async function damageMiddle(path: string, options: { at?: number; length?: number } = {}): Promise<void> {
  const bytes = await readFile(path);
  const from = Math.floor(bytes.length * (options.at ?? 0.5));
  const to = Math.min(bytes.length, from + (options.length ?? 400));
  for (let i = from; i < to; i++) bytes[i] = ((i - from) * 37 + 11) & 0xff;
  await writeFile(path, bytes);
}
