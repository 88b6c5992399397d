/**
 * The browser page, bundled by esbuild when the server first needs it: `web/main.ts` (the page)
 * and `web/worker-wasm.ts`, `worker-webgpu.ts` (inference, each with a build of onnxruntime-web's
 * JavaScript; their .wasm files are served
 * from node_modules by static-route.ts) into a cache folder named by a hash of the sources and the
 * tool versions, so a fresh clone serves the page with no build step and an edit to web/ is
 * picked up at the next start.
 * Built into a temporary folder and renamed, so two servers starting at once cannot see half a bundle.
 */
import { createHash, randomUUID } from 'node:crypto';
import { mkdir, readFile, readdir, rename, rm, writeFile } from 'node:fs/promises';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { basename, dirname, extname, join, relative, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { messageOf } from '../util/errors.js';
import { storeDir } from '../weights/store.js';

/** The page's sources: `web/` beside `src/` (and beside `dist/` in the published package). */
export const WEB_SOURCES = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..', 'web');

/** Bumped when the way the bundle is made changes, so old cache folders are not reused. */
const BUNDLE_FORMAT = 3;

/** One file the page may load, by URL path. */
export interface WebAsset {
  /** Where it is on disk. */
  readonly file: string;
  readonly type: string;
  readonly etag: string;
  /** Whether its URL names its content (a hash or a version), so browsers may keep it for good. */
  readonly immutable: boolean;
}

export interface WebBundle {
  /** Every file the page may load, by URL path ('/', '/assets/main-XXXX.js', '/ort/1.31.1/…'). */
  readonly assets: ReadonlyMap<string, WebAsset>;
}

const TYPES: Readonly<Record<string, string>> = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.mjs': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.map': 'application/json; charset=utf-8',
  '.wasm': 'application/wasm',
};

/** The media type for a file name; only names in {@link TYPES} are ever served. */
export function contentType(name: string): string | undefined {
  return TYPES[extname(name)];
}

/** onnxruntime-web's dist folder and version, found through its package exports. */
export function onnxruntimeWebDist(): { dir: string; version: string } {
  const require = createRequire(import.meta.url);
  const dir = dirname(require.resolve('onnxruntime-web/ort-wasm-simd-threaded.wasm'));
  const { version } = require(join(dir, '..', 'package.json')) as { version: string };
  return { dir, version };
}

/** The wasm runtime files onnxruntime-web loads by URL at run time (never a CDN: this server has them). */
const ORT_RUNTIME_FILE = /^ort-wasm-simd-threaded(\.[a-z]+)?\.(wasm|mjs)$/;

async function sourceFiles(dir: string): Promise<string[]> {
  const entries = await readdir(dir, { withFileTypes: true, recursive: true });
  return entries.filter((e) => e.isFile()).map((e) => join(e.parentPath, e.name)).sort();
}

/** A hash of the page's sources and of the tools that turn them into the bundle. */
async function sourceHash(esbuildVersion: string, ortVersion: string): Promise<string> {
  const hash = createHash('sha256').update(`${BUNDLE_FORMAT} esbuild ${esbuildVersion} onnxruntime-web ${ortVersion}\n`);
  for (const file of await sourceFiles(WEB_SOURCES)) {
    hash.update(`${relative(WEB_SOURCES, file)}\n`).update(await readFile(file));
  }
  return hash.digest('hex').slice(0, 20);
}

interface Manifest {
  /** URL path → file name in the bundle folder and its ETag. */
  readonly files: Record<string, { name: string; etag: string }>;
}

/** Runs esbuild into `out` and writes index.html and manifest.json there. */
async function build(out: string, ortVersion: string): Promise<void> {
  const esbuild = await import('esbuild');
  const result = await esbuild.build({
    entryPoints: ['main.ts', 'worker-wasm.ts', 'worker-webgpu.ts'].map((name) => join(WEB_SOURCES, name)),
    bundle: true, format: 'esm', platform: 'browser', target: 'es2022', minify: true, sourcemap: 'linked',
    outdir: out, entryNames: '[name]-[hash]', metafile: true, logLevel: 'silent', write: true,
    // onnxruntime-web's build that loads its wasm glue by URL instead of inlining it.
    conditions: ['onnxruntime-web-use-extern-wasm'],
    define: { ORT_VERSION: JSON.stringify(ortVersion) },
  });
  const outputs = Object.keys(result.metafile.outputs).map((path) => basename(path));
  const find = (pattern: RegExp) => outputs.find((name) => pattern.test(name));
  const names = { SCRIPT: find(/^main-\w+\.js$/), STYLE: find(/^main-\w+\.css$/), WORKER_WASM: find(/^worker-wasm-\w+\.js$/), WORKER_WEBGPU: find(/^worker-webgpu-\w+\.js$/) };
  let html = await readFile(join(WEB_SOURCES, 'index.html'), 'utf8');
  for (const [key, name] of Object.entries(names)) {
    if (name === undefined) throw new Error(`esbuild made no file for %${key}% (${outputs.join(', ')})`);
    html = html.replace(`%${key}%`, `/assets/${name}`);
  }
  await writeFile(join(out, 'index.html'), html);
  const files: Manifest['files'] = {};
  for (const name of [...outputs, 'index.html']) {
    const etag = `"${createHash('sha256').update(await readFile(join(out, name))).digest('hex').slice(0, 20)}"`;
    files[name === 'index.html' ? '/' : `/assets/${name}`] = { name, etag };
  }
  await writeFile(join(out, 'manifest.json'), JSON.stringify({ files } satisfies Manifest));
}

/** The cache folder: the model store's `web/`, or the temp folder when the store cannot be written. */
async function cacheRoot(): Promise<string> {
  const preferred = join(storeDir(), 'web');
  try {
    await mkdir(preferred, { recursive: true });
    return preferred;
  } catch {
    const fallback = join(tmpdir(), `pastiche-web-${process.getuid?.() ?? 'user'}`);
    await mkdir(fallback, { recursive: true });
    return fallback;
  }
}

async function readManifest(dir: string): Promise<Manifest | undefined> {
  return readFile(join(dir, 'manifest.json'), 'utf8').then((text) => JSON.parse(text) as Manifest, () => undefined);
}

/**
 * Builds the page (or finds it built) and lists every file it may load, onnxruntime-web's wasm
 * runtime included.
 * @throws Error saying what failed when esbuild or onnxruntime-web is missing or the sources do not compile.
 */
export async function buildWebBundle(): Promise<WebBundle> {
  const ort = onnxruntimeWebDist();
  const { version: esbuildVersion } = await import('esbuild');
  const root = await cacheRoot();
  const dir = join(root, await sourceHash(esbuildVersion, ort.version));
  let manifest = await readManifest(dir);
  if (manifest === undefined) {
    const temp = `${dir}.tmp-${randomUUID()}`;
    try {
      await build(temp, ort.version);
      await rename(temp, dir).catch(async () => {
        // Another server renamed its identical build into place first: use that one; a folder
        // without a manifest is debris of an interrupted build and is replaced.
        if ((await readManifest(dir)) !== undefined) return;
        await rm(dir, { recursive: true, force: true });
        await rename(temp, dir);
      });
    } catch (error) {
      throw new Error(`the web page could not be built from ${WEB_SOURCES}: ${messageOf(error)}`, { cause: error });
    } finally {
      await rm(temp, { recursive: true, force: true });
    }
    manifest = (await readManifest(dir))!;
  }
  const assets = new Map<string, WebAsset>();
  for (const [path, { name, etag }] of Object.entries(manifest.files)) {
    assets.set(path, { file: join(dir, name), type: contentType(name)!, etag, immutable: path !== '/' });
  }
  for (const name of (await readdir(ort.dir)).filter((n) => ORT_RUNTIME_FILE.test(n))) {
    assets.set(`/ort/${ort.version}/${name}`, { file: join(ort.dir, name), type: contentType(name)!, etag: `"ort-${ort.version}-${name}"`, immutable: true });
  }
  return { assets };
}
