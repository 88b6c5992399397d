// Child process of bench/memory.ts: stylise one file, print peak RSS as JSON.
import { openStyleModel } from '../src/style/model.js';
import { stylizeFile } from '../src/style/transfer.js';
import { peakRssMiB } from './util.js';

const [model, input, output] = process.argv.slice(2);
const style = await openStyleModel(model, { threads: 2 });
const t0 = performance.now();
let tiles = 0;
await stylizeFile(style, input, output, { onTile: (_, total) => { tiles = total; } });
const seconds = (performance.now() - t0) / 1000;
process.stdout.write(JSON.stringify({ maxRssMiB: peakRssMiB(), seconds, tiles }));
