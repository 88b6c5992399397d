/**
 * `npm run bench`: pastiche's performance figures on this machine, each next to a peer run in the
 * same process. Heavy: minutes, not seconds. Sections: inference, video, memory, gatys, train, quality, temporal.
 * Usage: npm run bench [-- --only inference,video,memory,gatys,train,quality,temporal] [--threads N] [--torch-vgg16]
 * (--torch-vgg16: train's PyTorch peer also times pytorch/examples' own VGG16 loss, about a minute more)
 * quality: a pastiche-trained model against a reference checkpoint (bench/quality.ts: --models A=B,
 * --style PATH, --photos a,b, --size N)
 * temporal: warping error of a per-frame model and its stabilised version (bench/temporal.ts: --temporal-models A=B)
 */
import { benchInference } from './inference.js';
import { benchVideo } from './video.js';
import { benchMemory } from './memory.js';
import { benchGatys } from './gatys.js';
import { benchTrain } from './train.js';
import { benchQuality } from './quality.js';
import { benchTemporal } from './temporal.js';
import { benchLive } from './live.js';
import { benchLargePhoto } from './large-photo.js';
import { benchWeb } from './web.js';
import { machine } from './util.js';
import { sharedDataDir } from '../test/helpers/data.js';

const args = process.argv.slice(2);
const only = args.includes('--only') ? args[args.indexOf('--only') + 1].split(',') : ['inference', 'video', 'memory', 'gatys', 'train', 'quality', 'temporal'];
const threads = args.includes('--threads') ? Number(args[args.indexOf('--threads') + 1]) : 2;
const data = sharedDataDir();
if (!data) {
  console.error('bench: the shared data folder (models, images, video) was not found; set PASTICHE_DATA');
  process.exit(1);
}
console.log(`# pastiche benchmarks\n\n${machine()}\n${new Date().toISOString()}`);
if (only.includes('inference')) await benchInference(data, threads);
if (only.includes('video')) await benchVideo(data, threads);
if (only.includes('memory')) await benchMemory(data);
if (only.includes('gatys')) await benchGatys(data, threads);
if (only.includes('train')) await benchTrain(data, threads, { torchVgg16: args.includes('--torch-vgg16') });
if (only.includes('quality')) await benchQuality(data, threads, args);
if (only.includes('temporal')) await benchTemporal(data, threads, args);
if (only.includes('live')) await benchLive(data);
// Opt-in (--only large): 12 MP photos, exact tiled statistics against the fast path (bench/large-photo.ts).
if (only.includes('large')) await benchLargePhoto(data, threads, args);
if (only.includes('web')) await benchWeb(data, threads, args);
