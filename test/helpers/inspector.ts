/**
 * A Chrome DevTools Protocol session on a page and on its dedicated workers (the serve page runs
 * onnxruntime-web in one): playwright gives CDP sessions for pages only, so the workers are
 * reached through the page's session with Target.setAutoAttach and Target.sendMessageToTarget.
 */
import type { CDPSession, Page } from 'playwright-core';

interface Attached {
  readonly sessionId: string;
  readonly url: string;
}

export class Inspector {
  private readonly workers: Attached[] = [];
  private readonly waiting = new Map<number, { resolve: (result: unknown) => void; reject: (error: Error) => void }>();
  private nextId = 1;

  private constructor(readonly session: CDPSession) {
    session.on('Target.attachedToTarget', (event) => {
      if (event.targetInfo.type === 'worker') this.workers.push({ sessionId: event.sessionId, url: event.targetInfo.url });
    });
    session.on('Target.detachedFromTarget', (event) => {
      const i = this.workers.findIndex((w) => w.sessionId === event.sessionId);
      if (i >= 0) this.workers.splice(i, 1);
    });
    session.on('Target.receivedMessageFromTarget', (event) => {
      const message = JSON.parse(event.message) as { id?: number; result?: unknown; error?: { message: string } };
      const waiter = message.id === undefined ? undefined : this.waiting.get(message.id);
      if (waiter === undefined) return;
      this.waiting.delete(message.id!);
      if (message.error) waiter.reject(new Error(message.error.message));
      else waiter.resolve(message.result);
    });
  }

  /** Attaches to `page` and to the dedicated workers it has (and starts later). */
  static async attach(page: Page): Promise<Inspector> {
    const inspector = new Inspector(await page.context().newCDPSession(page));
    await inspector.session.send('Target.setAutoAttach', { autoAttach: true, waitForDebuggerOnStart: false, flatten: false });
    return inspector;
  }

  /** URLs of the workers attached so far. */
  workerUrls(): string[] {
    return this.workers.map((w) => w.url);
  }

  /** Sends `method` to every attached worker; resolves with their results in {@link workerUrls} order. */
  async sendToWorkers<T>(method: string, params: object = {}): Promise<T[]> {
    return Promise.all(this.workers.map((worker) => new Promise<T>((resolve, reject) => {
      const id = this.nextId++;
      this.waiting.set(id, { resolve: resolve as (result: unknown) => void, reject });
      this.session.send('Target.sendMessageToTarget', { sessionId: worker.sessionId, message: JSON.stringify({ id, method, params }) }).catch(reject);
    })));
  }

  async detach(): Promise<void> {
    for (const { reject } of this.waiting.values()) reject(new Error('the inspector was detached'));
    this.waiting.clear();
    await this.session.detach().catch(() => undefined);
  }
}
