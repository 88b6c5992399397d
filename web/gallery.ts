/** The gallery: every model in the store as a card with a thumbnail the server makes on demand. */
import { apiFetch, listModels, type ModelInfo } from './api.js';

export class Gallery {
  private selected: string | null = null;
  private models: ModelInfo[] = [];
  /** Thumbnails are fetched one after another: the server makes them in its few stylize slots. */
  private thumbnails: Promise<unknown> = Promise.resolve();

  constructor(private readonly list: HTMLElement, private readonly onSelect: (name: string) => void) {}

  /** The selected model's name (null while the store is empty). */
  get model(): string | null {
    return this.selected;
  }

  /** Loads the list; selects `preferred` when it is there, else the first model. */
  async load(preferred: string | null): Promise<ModelInfo[]> {
    const models = await listModels();
    this.models = models;
    this.list.replaceChildren(...models.map((model) => this.card(model)));
    if (models.length === 0) {
      const empty = document.createElement('li');
      empty.className = 'empty';
      empty.textContent = 'No styles: the model store is empty and no built-in styles were found; add one with `pastiche models import` or `pastiche train`, then reload.';
      this.list.append(empty);
    }
    const first = preferred ?? models[0]?.name ?? null;
    if (first !== null) this.select(first, false);
    return models;
  }

  /** What GET /api/models says about `name`, if it listed it. */
  info(name: string): ModelInfo | undefined {
    return this.models.find((m) => m.name === name);
  }

  /** Marks `name` as selected; `notify` tells the page (false on the first load). */
  select(name: string, notify = true): void {
    this.selected = name;
    for (const card of this.list.querySelectorAll<HTMLElement>('[data-model]')) card.classList.toggle('selected', card.dataset.model === name);
    if (notify) this.onSelect(name);
  }

  private card(model: ModelInfo): HTMLElement {
    const item = document.createElement('li');
    item.dataset.model = model.name;
    const button = document.createElement('button');
    button.type = 'button';
    button.title = `${model.builtin ? 'built-in: ' : ''}${model.description} (${model.architecture}, ${(model.bytes / 2 ** 20).toFixed(1)} MiB)`;
    const image = document.createElement('img');
    image.alt = '';
    image.width = 96;
    image.height = 72;
    const label = document.createElement('span');
    label.textContent = model.name;
    button.append(image, label);
    button.addEventListener('click', () => this.select(model.name));
    item.append(button);
    // Fetched (not an <img src>) so the bearer token goes along when the server wants one.
    this.thumbnails = this.thumbnails.then(() => apiFetch(`/api/models/${encodeURIComponent(model.name)}/thumbnail`))
      .then(async (res) => (image.src = URL.createObjectURL(await res.blob())))
      .catch(() => image.classList.add('missing'));
    return item;
  }
}
