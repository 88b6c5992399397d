/**
 * Server jobs from the page: Gatys `optimize` (style image, optional content image, size and
 * iterations) and `video` (a clip stylised with the selected model). Files go up through POST
 * /api/uploads, the job through POST /api/jobs; progress and preview images arrive as server-sent
 * events; Cancel sends DELETE; the result downloads when done.
 */
import { apiFetch, apiJson, readEvents } from './api.js';
import { saveBlob } from './photo.js';
import { messageOf } from './runtime.js';

interface JobStatus {
  readonly id: string;
  readonly kind: string;
  readonly state: 'queued' | 'running' | 'done' | 'failed' | 'cancelled';
  readonly progress: { done: number; total: number | null; unit: string; etaSeconds: number | null } | null;
  readonly error?: string;
  readonly preview?: { version: number };
  readonly result?: { type: string; bytes: number };
}

/** The panel's elements, found by id in index.html. */
export interface JobElements {
  readonly form: HTMLFormElement;
  readonly kind: HTMLSelectElement;
  readonly style: HTMLInputElement;
  readonly content: HTMLInputElement;
  readonly size: HTMLInputElement;
  readonly iterations: HTMLInputElement;
  readonly start: HTMLButtonElement;
  readonly cancel: HTMLButtonElement;
  readonly download: HTMLButtonElement;
  readonly progress: HTMLProgressElement;
  readonly status: HTMLElement;
  readonly preview: HTMLImageElement;
}

async function upload(file: File): Promise<string> {
  return (await apiJson<{ id: string }>('/api/uploads', { method: 'POST', body: file })).id;
}

export class JobsPanel {
  private current: { id: string; events: AbortController } | undefined;
  private previewVersion = 0;

  constructor(private readonly el: JobElements, private readonly model: () => string) {
    el.form.addEventListener('submit', (event) => {
      event.preventDefault();
      void this.submit();
    });
    el.cancel.addEventListener('click', () => void this.cancel());
    el.download.addEventListener('click', () => void this.download());
    el.kind.addEventListener('change', () => this.showFields());
    this.showFields();
  }

  private showFields(): void {
    const optimize = this.el.kind.value === 'optimize';
    for (const field of this.el.form.querySelectorAll<HTMLElement>('[data-for]')) field.hidden = field.dataset.for !== this.el.kind.value;
    this.el.style.required = optimize;
    this.el.content.required = !optimize;
  }

  private say(line: string, error = false): void {
    this.el.status.textContent = line;
    this.el.status.classList.toggle('error', error);
  }

  private async submit(): Promise<void> {
    const kind = this.el.kind.value;
    this.el.start.disabled = true;
    this.el.download.disabled = true;
    this.el.progress.value = 0;
    this.el.preview.hidden = true;
    this.previewVersion = 0;
    try {
      this.say('uploading…');
      const content = this.el.content.files?.[0];
      let job: Record<string, unknown>;
      if (kind === 'optimize') {
        const style = this.el.style.files?.[0];
        if (style === undefined) throw new Error('choose a style image first');
        job = { kind, style: await upload(style), size: Number(this.el.size.value), iterations: Number(this.el.iterations.value), previewEvery: Math.max(1, Math.round(Number(this.el.iterations.value) / 10)) };
        if (content !== undefined) job.content = await upload(content);
      } else {
        if (content === undefined) throw new Error('choose a video first');
        job = { kind, input: await upload(content), model: this.model() };
      }
      const status = await apiJson<JobStatus>('/api/jobs', { method: 'POST', headers: { 'Content-Type': 'application/json' }, body: JSON.stringify(job) });
      const events = new AbortController();
      this.current = { id: status.id, events };
      this.el.form.dataset.job = status.id;
      this.el.cancel.disabled = false;
      this.show(status);
      await readEvents(`/api/jobs/${status.id}/events`, (_name, data) => this.show(data as JobStatus), events.signal);
    } catch (error) {
      if ((error as Error).name !== 'AbortError') this.say(messageOf(error), true);
    } finally {
      this.el.start.disabled = false;
      this.el.cancel.disabled = true;
    }
  }

  private show(status: JobStatus): void {
    const p = status.progress;
    if (p !== null && p.total !== null && p.total > 0) {
      this.el.progress.max = p.total;
      this.el.progress.value = p.done;
    }
    const counts = p === null ? '' : ` ${p.done}${p.total === null ? '' : `/${p.total}`} ${p.unit}`;
    const eta = p?.etaSeconds == null ? '' : `, ~${Math.ceil(p.etaSeconds)} s left`;
    this.say(status.state === 'failed' ? `failed: ${status.error ?? 'unknown error'}` : `${status.kind} ${status.state}${counts}${eta}`, status.state === 'failed');
    this.el.form.dataset.state = status.state;
    if (status.preview !== undefined && status.preview.version > this.previewVersion) {
      this.previewVersion = status.preview.version;
      void this.showImage(`/api/jobs/${status.id}/preview`);
    }
    if (status.state === 'done' && status.result?.type.startsWith('image/')) void this.showImage(`/api/jobs/${status.id}/result`);
    this.el.download.disabled = status.state !== 'done';
  }

  /** Fetched rather than linked, so a bearer token goes with it. */
  private async showImage(path: string): Promise<void> {
    try {
      const blob = await (await apiFetch(path)).blob();
      const old = this.el.preview.src;
      this.el.preview.src = URL.createObjectURL(blob);
      this.el.preview.hidden = false;
      if (old.startsWith('blob:')) URL.revokeObjectURL(old);
    } catch {
      // A preview replaced or removed meanwhile: the next event brings another.
    }
  }

  private async cancel(): Promise<void> {
    const job = this.current;
    if (job === undefined) return;
    this.el.cancel.disabled = true;
    try {
      const status = await apiJson<JobStatus>(`/api/jobs/${job.id}`, { method: 'DELETE' });
      this.show(status);
    } catch (error) {
      this.say(messageOf(error), true);
    }
  }

  private async download(): Promise<void> {
    const job = this.current;
    if (job === undefined) return;
    try {
      const res = await apiFetch(`/api/jobs/${job.id}/result`);
      const name = /filename="([^"]+)"/.exec(res.headers.get('content-disposition') ?? '')?.[1] ?? `${job.id}`;
      saveBlob(await res.blob(), name);
    } catch (error) {
      this.say(messageOf(error), true);
    }
  }
}
