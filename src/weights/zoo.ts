/**
 * The model zoo: VGG weights pastiche can download on first use, with their checksums. Keras's
 * ImageNet VGG ('caffe' preprocessing, 'notop' = convolutions only, 58–80 MB) is the default;
 * torchvision's ('torch' preprocessing, with the classifier, 528–548 MB) is the alternative.
 */
import { basename } from 'node:path';
import type { VggDepth } from '../nets/vgg.js';
import type { VggWeightsFormat } from './vgg-weights.js';

export type ChecksumAlgorithm = 'md5' | 'sha256';

/** A full digest (`hex`) or its leading digits (`prefix`, as torchvision puts in file names). */
export type Checksum =
  | { readonly algorithm: ChecksumAlgorithm; readonly hex: string }
  | { readonly algorithm: ChecksumAlgorithm; readonly prefix: string };

export interface ZooEntry {
  readonly id: string;
  readonly description: string;
  readonly url: string;
  /** The file name in the store's weights folder. */
  readonly fileName: string;
  readonly checksum: Checksum;
  /** Bytes, where known. */
  readonly size?: number;
  readonly format: VggWeightsFormat;
  readonly depth: VggDepth;
}

const KERAS = 'https://storage.googleapis.com/tensorflow/keras-applications';
const TORCHVISION = 'https://download.pytorch.org/models';

const entry = (e: Omit<ZooEntry, 'fileName'>): ZooEntry => ({ ...e, fileName: basename(new URL(e.url).pathname) });

/** Every downloadable VGG, default for each depth first. */
export const ZOO: readonly ZooEntry[] = [
  entry({
    id: 'vgg19-keras',
    description: 'VGG19 ImageNet weights from Keras applications, convolutions only (Caffe preprocessing)',
    url: `${KERAS}/vgg19/vgg19_weights_tf_dim_ordering_tf_kernels_notop.h5`,
    checksum: { algorithm: 'md5', hex: '253f8cb515780f3b799900260a226db6' },
    size: 80_134_624,
    format: 'keras-h5',
    depth: 19,
  }),
  entry({
    id: 'vgg16-keras',
    description: 'VGG16 ImageNet weights from Keras applications, convolutions only (Caffe preprocessing)',
    url: `${KERAS}/vgg16/vgg16_weights_tf_dim_ordering_tf_kernels_notop.h5`,
    checksum: { algorithm: 'md5', hex: '6d6bbae143d832006294945121d1f1fc' },
    size: 58_889_256,
    format: 'keras-h5',
    depth: 16,
  }),
  entry({
    id: 'vgg19-torchvision',
    description: 'VGG19 ImageNet weights from torchvision, with classifier (torchvision preprocessing)',
    url: `${TORCHVISION}/vgg19-dcbb9e9d.pth`,
    checksum: { algorithm: 'sha256', prefix: 'dcbb9e9d' },
    size: 574_673_361,
    format: 'torch-pth',
    depth: 19,
  }),
  entry({
    id: 'vgg16-torchvision',
    description: 'VGG16 ImageNet weights from torchvision, with classifier (torchvision preprocessing)',
    url: `${TORCHVISION}/vgg16-397923af.pth`,
    checksum: { algorithm: 'sha256', prefix: '397923af' },
    size: 553_433_881,
    format: 'torch-pth',
    depth: 16,
  }),
];

/**
 * A zoo entry by id, or the default for a depth.
 * @throws RangeError for an unknown id, listing the known ones.
 */
export function zooEntry(idOrDepth: string | VggDepth): ZooEntry {
  const found = typeof idOrDepth === 'number' ? ZOO.find((e) => e.depth === idOrDepth) : ZOO.find((e) => e.id === idOrDepth);
  if (!found) throw new RangeError(`Expected one of ${ZOO.map((e) => `'${e.id}'`).join(', ')} for the VGG weights id but received ${JSON.stringify(idOrDepth)}`);
  return found;
}

/**
 * Where to download an entry from: its URL, or `$PASTICHE_ZOO_URL/<file name>` when that
 * variable names a mirror (tests point it at a local server).
 */
export function zooUrl(entry: ZooEntry): string {
  const base = process.env.PASTICHE_ZOO_URL;
  return base ? `${base.replace(/\/+$/, '')}/${entry.fileName}` : entry.url;
}

/** The checksum as text for messages, e.g. 'md5 253f…' or 'sha256 dcbb9e9d…'. */
export function formatChecksum(checksum: Checksum): string {
  return 'hex' in checksum ? `${checksum.algorithm} ${checksum.hex}` : `${checksum.algorithm} ${checksum.prefix}…`;
}
