/**
 * The page served by `pastiche serve`: gallery, live webcam, photo and server jobs, wired to the
 * controls in index.html. URL parameters (see hook.ts): model, backend, size, autostart, margin,
 * strength, colors.
 */
import './style.css';
import { Gallery } from './gallery.js';
import { hook, liveMargin, photoMargin } from './hook.js';
import { JobsPanel } from './jobs.js';
import { LiveView } from './live.js';
import { PhotoPanel, saveBlob } from './photo.js';
import { messageOf, probe, type Backend } from './runtime.js';

const $ = <T extends HTMLElement>(id: string): T => {
  const element = document.getElementById(id);
  if (element === null) throw new Error(`index.html has no #${id}`);
  return element as T;
};

const params = new URLSearchParams(location.search);
const SIZES = ['320x240', '640x480'];
const BACKENDS = ['auto', 'wasm', 'webgpu'];

const size = $<HTMLSelectElement>('size');
const backend = $<HTMLSelectElement>('backend');
const strength = $<HTMLInputElement>('strength');
const colors = $<HTMLInputElement>('colors');
const liveButton = $<HTMLButtonElement>('live-toggle');
const liveStatus = $('live-status');
const fps = $('fps');
const liveCanvas = $<HTMLCanvasElement>('live');

const sizeParam = /^(\d{2,4})x(\d{2,4})$/.exec(params.get('size') ?? '');
if (sizeParam !== null && Number(sizeParam[1]) <= 1920 && Number(sizeParam[2]) <= 1920) {
  // Other sizes than the menu's are for tests and benchmarks.
  if (!SIZES.includes(sizeParam[0])) size.append(new Option(sizeParam[0]));
  size.value = sizeParam[0];
}
if (BACKENDS.includes(params.get('backend') ?? '')) backend.value = params.get('backend')!;
const strengthParam = Number(params.get('strength'));
if (params.has('strength') && strengthParam >= 0 && strengthParam <= 1) strength.value = String(strengthParam);
colors.checked = params.get('colors') === 'luminance';
const marginParam = Number(params.get('margin'));
const marginAsked = params.has('margin') && Number.isInteger(marginParam) && marginParam >= 0 && marginParam <= 256 ? marginParam : undefined;

const photoMaxParam = Number(params.get('photoMaxPixels'));
const photoMaxPixels = params.has('photoMaxPixels') && Number.isInteger(photoMaxParam) && photoMaxParam >= 0 ? photoMaxParam : undefined;

const outputOptions = () => ({ strength: Number(strength.value), preserveColors: colors.checked });

function say(element: HTMLElement, line: string, error = false): void {
  element.textContent = line;
  element.classList.toggle('error', error);
}

const live = new LiveView(liveCanvas, (line) => say(liveStatus, line, hook.state === 'error'));
let liveOn = false;

const gallery = new Gallery($('gallery'), () => {
  if (liveOn) void startLive();
  if (lastPhoto !== undefined) void stylizePhoto(lastPhoto);
});

async function startLive(): Promise<void> {
  const model = gallery.model;
  if (model === null) return say(liveStatus, 'choose a model first (the store is empty)', true);
  liveOn = true;
  liveButton.textContent = 'Stop';
  const [width, height] = size.value.split('x').map(Number);
  const margin = marginAsked ?? liveMargin(gallery.info(model)?.architecture);
  await live.start({ model, backend: backend.value as Backend | 'auto', width, height, margin });
  // start() returns when its loop ends: on an error the button offers a fresh start.
  if (hook.state === 'error') {
    liveOn = false;
    liveButton.textContent = 'Start camera';
  }
}

async function stopLive(): Promise<void> {
  liveOn = false;
  liveButton.textContent = 'Start camera';
  await live.stop();
  say(liveStatus, 'stopped');
}

liveButton.addEventListener('click', () => void (liveOn ? stopLive() : startLive()));
for (const control of [size, backend]) control.addEventListener('change', () => liveOn && void startLive());
const strengthValue = $('strength-value');
const showOptions = () => {
  live.options = outputOptions();
  strengthValue.textContent = Number(strength.value).toFixed(2);
};
for (const control of [strength, colors]) control.addEventListener('input', showOptions);
showOptions();
$<HTMLButtonElement>('snapshot').addEventListener('click', () => {
  liveCanvas.toBlob((blob) => blob && saveBlob(blob, `pastiche-${gallery.model ?? 'live'}-${Date.now()}.png`), 'image/png');
});
setInterval(() => (fps.textContent = hook.state === 'running' ? `${hook.fps.toFixed(1)} fps · ${hook.backend}` : ''), 500);

// Photo: drop anywhere on the drop zone, or choose a file.
const photoStatus = $('photo-status');
const photoDownload = $<HTMLButtonElement>('photo-download');
const photo = new PhotoPanel($<HTMLCanvasElement>('photo'), (line, error) => say(photoStatus, line, error), (ready) => (photoDownload.disabled = !ready));
let lastPhoto: File | undefined;

async function photoBackend(): Promise<Backend> {
  if (backend.value === 'wasm' || backend.value === 'webgpu') return backend.value;
  return hook.backend ?? 'wasm';
}

async function stylizePhoto(file: File): Promise<void> {
  lastPhoto = file;
  const model = gallery.model;
  if (model === null) return say(photoStatus, 'choose a model first (the store is empty)', true);
  const margin = photoMargin(gallery.info(model)?.architecture);
  await photo.stylize(file, { model, backend: await photoBackend(), options: outputOptions(), margin, maxPixels: photoMaxPixels });
}

const dropZone = $('drop-zone');
const photoInput = $<HTMLInputElement>('photo-input');
photoInput.addEventListener('change', () => photoInput.files?.[0] && void stylizePhoto(photoInput.files[0]));
dropZone.addEventListener('dragover', (event) => {
  event.preventDefault();
  dropZone.classList.add('over');
});
dropZone.addEventListener('dragleave', () => dropZone.classList.remove('over'));
dropZone.addEventListener('drop', (event) => {
  event.preventDefault();
  dropZone.classList.remove('over');
  const file = event.dataTransfer?.files[0];
  if (file !== undefined) void stylizePhoto(file);
});
photoDownload.addEventListener('click', () => void photo.download());

new JobsPanel({
  form: $<HTMLFormElement>('job-form'), kind: $<HTMLSelectElement>('job-kind'), style: $<HTMLInputElement>('job-style'),
  content: $<HTMLInputElement>('job-content'), size: $<HTMLInputElement>('job-size'), iterations: $<HTMLInputElement>('job-iterations'),
  start: $<HTMLButtonElement>('job-start'), cancel: $<HTMLButtonElement>('job-cancel'), download: $<HTMLButtonElement>('job-download'),
  progress: $<HTMLProgressElement>('job-progress'), status: $('job-status'), preview: $<HTMLImageElement>('job-preview'),
}, () => gallery.model ?? '');

async function boot(): Promise<void> {
  try {
    const { webgpu, threads } = await probe();
    const gpu = webgpu === null ? 'no WebGPU' : `WebGPU: ${webgpu.name}${webgpu.software ? ' (software)' : ''}`;
    $('environment').textContent = `WASM ${threads} thread${threads === 1 ? '' : 's'}${self.crossOriginIsolated ? '' : ' (page not cross-origin isolated)'}, ${gpu}`;
  } catch (error) {
    $('environment').textContent = messageOf(error);
  }
  try {
    await gallery.load(params.get('model'));
  } catch (error) {
    say(liveStatus, `the model list could not be loaded: ${messageOf(error)}`, true);
    if (params.has('model')) gallery.select(params.get('model')!, false);
  }
  if (params.get('autostart') === '1') await startLive();
}

void boot();
