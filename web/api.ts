/**
 * The server's API from the page. A server started with --token wants `Authorization: Bearer`
 * on /api and /models: open the page as `http://host:port/#token=<token>`; the fragment never
 * leaves the browser, and the token is kept for the tab's session only.
 */

const TOKEN_KEY = 'pastiche.token';

function token(): string | null {
  const fromHash = /(?:^#|&)token=([^&]+)/.exec(location.hash)?.[1];
  if (fromHash !== undefined) {
    sessionStorage.setItem(TOKEN_KEY, decodeURIComponent(fromHash));
    history.replaceState(null, '', location.pathname + location.search);
  }
  return sessionStorage.getItem(TOKEN_KEY);
}

/** fetch with the bearer token when there is one; a reply that is not 2xx throws with the server's message. */
export async function apiFetch(path: string, init: RequestInit = {}): Promise<Response> {
  const headers = new Headers(init.headers);
  const bearer = token();
  if (bearer !== null) headers.set('Authorization', `Bearer ${bearer}`);
  const res = await fetch(path, { ...init, headers });
  if (!res.ok) {
    const body = await res.text();
    let message = body;
    try {
      message = (JSON.parse(body) as { error?: string }).error ?? body;
    } catch {
      // not JSON: keep the text
    }
    throw new Error(`${init.method ?? 'GET'} ${path}: ${res.status} ${message}`.trim());
  }
  return res;
}

export async function apiJson<T>(path: string, init: RequestInit = {}): Promise<T> {
  return (await (await apiFetch(path, init)).json()) as T;
}

/** One model of GET /api/models. */
export interface ModelInfo {
  readonly name: string;
  readonly architecture: string;
  readonly description: string;
  readonly bytes: number;
  readonly url: string;
  /** Shipped with pastiche rather than kept in the user's store. */
  readonly builtin?: boolean;
}

export async function listModels(): Promise<ModelInfo[]> {
  return (await apiJson<{ models: ModelInfo[] }>('/api/models')).models;
}

/** A model file's bytes (revalidated through its ETag by the browser cache). */
export async function fetchModel(name: string): Promise<Uint8Array> {
  const res = await apiFetch(`/models/${encodeURIComponent(name)}.onnx`, { cache: 'no-cache' });
  return new Uint8Array(await res.arrayBuffer());
}

/**
 * Server-sent events read with fetch (EventSource cannot send the bearer token): calls `onEvent`
 * for each event until the stream ends or `signal` aborts.
 */
export async function readEvents(path: string, onEvent: (name: string, data: unknown) => void, signal?: AbortSignal): Promise<void> {
  const res = await apiFetch(path, { signal, headers: { Accept: 'text/event-stream' } });
  const reader = res.body!.pipeThrough(new TextDecoderStream()).getReader();
  let text = '';
  for (;;) {
    const { done, value } = await reader.read();
    if (done) return;
    text += value;
    let end: number;
    while ((end = text.indexOf('\n\n')) >= 0) {
      const block = text.slice(0, end);
      text = text.slice(end + 2);
      const name = /^event: (.*)$/m.exec(block)?.[1] ?? 'message';
      const data = /^data: (.*)$/m.exec(block)?.[1];
      if (data !== undefined) onEvent(name, JSON.parse(data));
    }
  }
}
