/**
 * A one-line progress bar on stderr with count, rate and ETA. Drawn only on a terminal, at most
 * ten times a second; elsewhere (pipes, CI logs) it stays silent so output remains parseable.
 */
export interface ProgressBar {
  update(done: number, total: number | null, detail?: string): void;
  /** Prints a line above the bar (e.g. a skipped file). */
  log(line: string): void;
  done(): void;
}

function formatSeconds(s: number): string {
  if (!Number.isFinite(s)) return '--:--';
  const m = Math.floor(s / 60);
  const sec = Math.floor(s % 60);
  return m >= 60 ? `${Math.floor(m / 60)}h${String(m % 60).padStart(2, '0')}m` : `${String(m).padStart(2, '0')}:${String(sec).padStart(2, '0')}`;
}

export function createProgressBar(label: string, unit: string, options: { enabled?: boolean; stream?: NodeJS.WriteStream } = {}): ProgressBar {
  const stream = options.stream ?? process.stderr;
  const enabled = options.enabled ?? Boolean(stream.isTTY);
  const started = performance.now();
  let lastDraw = 0;
  let drawn = false;
  const clear = (): void => {
    if (drawn) stream.write('\r\x1b[2K');
  };
  return {
    update(done, total, detail = '') {
      if (!enabled) return;
      const now = performance.now();
      if (now - lastDraw < 100 && done !== total) return;
      lastDraw = now;
      const elapsed = (now - started) / 1000;
      const rate = elapsed > 0 ? done / elapsed : 0;
      const eta = total && rate > 0 ? (total - done) / rate : Number.NaN;
      const width = 24;
      const fraction = total ? Math.min(1, done / total) : 0;
      const bar = total ? '█'.repeat(Math.round(fraction * width)).padEnd(width, '░') : '';
      const count = total ? `${done}/${total}` : `${done}`;
      const text = `${label} ${bar} ${count} ${unit} · ${rate.toFixed(1)} ${unit}/s · ETA ${formatSeconds(eta)} ${detail}`;
      clear();
      stream.write(text.slice(0, (stream.columns || 120) - 1));
      drawn = true;
    },
    log(line) {
      clear();
      drawn = false;
      stream.write(`${line}\n`);
    },
    done() {
      clear();
      drawn = false;
    },
  };
}
