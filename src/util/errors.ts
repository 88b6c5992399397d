/** An error about one file: its message always starts with the path. */
export class FileError extends Error {
  constructor(readonly path: string, problem: string, options?: { cause?: unknown }) {
    super(`${path}: ${problem}`, options);
    this.name = 'FileError';
  }
}

/** Raised when an operation is cancelled through an AbortSignal. */
export class AbortError extends Error {
  /**
   * @param kept files finished before the cancellation and left in place (a folder run keeps the
   *   images it completed); empty when nothing was written.
   */
  constructor(message = 'The operation was aborted', readonly kept: readonly string[] = []) {
    super(message);
    this.name = 'AbortError';
  }
}

/** Throws an AbortError if `signal` has fired. */
export function throwIfAborted(signal?: AbortSignal): void {
  if (signal?.aborted) throw new AbortError();
}

/** The message of anything thrown, without a stack. */
export function messageOf(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}
