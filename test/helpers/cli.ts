/** Runs the real `pastiche` binary (bin/pastiche.js through tsx) as a child process. */
import { spawn, type ChildProcess } from 'node:child_process';
import { join } from 'node:path';
import { projectRoot } from './data.js';

export interface CliResult {
  readonly code: number | null;
  readonly signal: NodeJS.Signals | null;
  readonly stdout: string;
  readonly stderr: string;
  /** The non-empty lines of stderr. */
  readonly errorLines: string[];
}

export interface CliOptions {
  /** Added to (and overriding) this process's environment; `undefined` removes a variable. */
  readonly env?: Readonly<Record<string, string | undefined>>;
  /** Called with the child once it is spawned (e.g. to send it a signal). */
  readonly onSpawn?: (child: ChildProcess) => void;
  /** Kill the child after this many ms (default 60 s) so a hung run fails instead of stalling the suite. */
  readonly timeoutMs?: number;
}

/** Runs `pastiche <args>` in the project root and collects its exit code and output. */
export function runCli(args: readonly string[], options: CliOptions = {}): Promise<CliResult> {
  const env: Record<string, string> = {};
  for (const [k, v] of Object.entries({ ...process.env, ...options.env })) if (v !== undefined) env[k] = v;
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [join(projectRoot, 'bin', 'pastiche.js'), ...args], {
      cwd: projectRoot, env, stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (c: Buffer) => (stdout += c.toString()));
    child.stderr.on('data', (c: Buffer) => (stderr += c.toString()));
    const timer = setTimeout(() => child.kill('SIGKILL'), options.timeoutMs ?? 60_000);
    child.on('error', (error) => {
      clearTimeout(timer);
      reject(error);
    });
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      resolve({ code, signal, stdout, stderr, errorLines: stderr.split('\n').filter((l) => l.trim() !== '') });
    });
    options.onSpawn?.(child);
  });
}
