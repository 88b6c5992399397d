/**
 * What the VGG loader and the zoo decide before any format reader runs: which reader a path
 * gets, the errors for paths that are no weights at all, and the zoo catalogue and its mirror.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdir, writeFile } from 'node:fs/promises';
import { loadVggWeights } from '../../src/weights/vgg-weights.js';
import { ZOO, zooEntry, zooUrl, formatChecksum } from '../../src/weights/zoo.js';
import { FileError } from '../../src/util/errors.js';
import { scratch } from '../helpers/files.js';

test('paths that hold no weights are FileErrors naming them', async () => {
  const s = await scratch();
  try {
    await assert.rejects(loadVggWeights(s.path('missing')), (e: Error) => e instanceof FileError && /missing: no such VGG weights file or folder/.test(e.message));
    await mkdir(s.path('empty-folder'));
    await assert.rejects(loadVggWeights(s.path('empty-folder')), /empty-folder: is a folder without model\.json/);
    await writeFile(s.path('notes.txt'), 'hello, I am not a weights file');
    await assert.rejects(loadVggWeights(s.path('notes.txt')), (e: Error) => e instanceof FileError && /not a weights file pastiche knows/.test(e.message));
    await writeFile(s.path('model.json'), 'not json');
    await assert.rejects(loadVggWeights(s.path('model.json')), /cannot read a TF\.js model\.json/);
  } finally {
    await s.cleanup();
  }
});

test('the zoo: Keras notop files by default, torchvision by id; PASTICHE_ZOO_URL replaces the host and path', () => {
  assert.equal(zooEntry(19).id, 'vgg19-keras');
  assert.equal(zooEntry(16).fileName, 'vgg16_weights_tf_dim_ordering_tf_kernels_notop.h5');
  assert.deepEqual(zooEntry('vgg19-torchvision').checksum, { algorithm: 'sha256', prefix: 'dcbb9e9d' });
  assert.equal(zooEntry('vgg16-torchvision').url, 'https://download.pytorch.org/models/vgg16-397923af.pth');
  assert.equal(formatChecksum(zooEntry(19).checksum), 'md5 253f8cb515780f3b799900260a226db6');
  for (const entry of ZOO) {
    assert.ok(entry.url.endsWith(`/${entry.fileName}`));
    if ('prefix' in entry.checksum) assert.ok(entry.fileName.includes(entry.checksum.prefix));
  }
  assert.throws(() => zooEntry('vgg11'), /Expected one of 'vgg19-keras', .* but received "vgg11"/);
  const saved = process.env.PASTICHE_ZOO_URL;
  try {
    process.env.PASTICHE_ZOO_URL = 'http://127.0.0.1:9/mirror/';
    assert.equal(zooUrl(zooEntry(19)), 'http://127.0.0.1:9/mirror/vgg19_weights_tf_dim_ordering_tf_kernels_notop.h5');
    delete process.env.PASTICHE_ZOO_URL;
    assert.equal(zooUrl(zooEntry(19)), zooEntry(19).url);
  } finally {
    if (saved !== undefined) process.env.PASTICHE_ZOO_URL = saved;
  }
});
