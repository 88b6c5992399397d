/**
 * `pastiche live` at 640x480: a 30 fps lavfi source (testsrc2, read at its own rate) stylised by
 * the CLI with its default threads into an H.264 file, for the store's real-time network (wave-rt,
 * when the user's store has it) and a quality network (the shared wave checkpoint, imported into a
 * temporary store). Reports what the progress line shows — fps in, fps stylised, dropped, latency —
 * next to the same network's inference-only rate in-process, for the default margin and margin 0.
 */
import { execFileSync } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { openStyleModel } from '../src/style/model.js';
import { stylizeImage } from '../src/style/transfer.js';
import { storeDir } from '../src/weights/store.js';
import { clearModelCache } from '../src/runtime/index.js';
import { defaultThreads } from '../src/runtime/index.js';
import { table, time, syntheticImage } from './util.js';
import { projectRoot } from '../test/helpers/data.js';

const SOURCE = 'testsrc2=size=640x480:rate=30';
const SECONDS = 10;

interface LiveJson { frames: number; stylized: number; dropped: number; received: number; inputFps: number; outputFps: number; latencyMs: number }

function runLive(model: string, margin: number, out: string, env: NodeJS.ProcessEnv): LiveJson {
  const stdout = execFileSync(process.execPath, [join(projectRoot, 'bin', 'pastiche.js'), 'live', '--format', 'lavfi', SOURCE, '-m', model,
    '--duration', String(SECONDS), '--margin', String(margin), '-o', out, '--json'], { env, encoding: 'utf8' });
  return JSON.parse(stdout) as LiveJson;
}

export async function benchLive(dataDir: string): Promise<void> {
  const dir = await mkdtemp(join(tmpdir(), 'pastiche-bench-live-'));
  try {
    const home = join(dir, 'home');
    const env = { ...process.env, PASTICHE_HOME: home };
    execFileSync(process.execPath, [join(projectRoot, 'bin', 'pastiche.js'), 'models', 'import', join(dataDir, 'models/fast-style/wave'), '--name', 'wave'], { env, stdio: 'ignore' });
    const models: { label: string; model: string; env: NodeJS.ProcessEnv }[] = [];
    const userRt = join(storeDir(), 'models', 'wave-rt.onnx');
    if (existsSync(userRt)) models.push({ label: 'wave-rt (realtime)', model: userRt, env });
    else console.log(`\n(live: wave-rt skipped: not in the store at ${storeDir()})`);
    models.push({ label: 'wave (lengstrom checkpoint, quality)', model: 'wave', env });

    const rows: (string | number)[][] = [];
    const image = { data: syntheticImage(640, 480), width: 640, height: 480 };
    for (const { label, model, env: runEnv } of models) {
      for (const margin of [48, 0]) {
        const style = await openStyleModel(model.endsWith('.onnx') ? model : join(home, 'models', `${model}.onnx`));
        const pure = await time(() => stylizeImage(style, image, { margin, tile: 0 }), 5, 2);
        clearModelCache();
        const r = runLive(model, margin, join(dir, 'out.mp4'), runEnv);
        rows.push([label, margin, (1000 / pure.medianMs).toFixed(1), r.inputFps.toFixed(1), r.outputFps.toFixed(1),
          `${r.dropped}/${r.received}`, Math.round(r.latencyMs), r.frames]);
      }
    }
    console.log(`\n## Live (pastiche live, lavfi ${SOURCE} read at its rate, ${SECONDS} s, H.264 file, default threads: ${defaultThreads()})\n`);
    console.log(table(['model', 'margin px', 'inference-only fps', 'fps in', 'fps stylised', 'dropped/received', 'latency ms', 'frames written'], rows));
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}
