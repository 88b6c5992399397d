/** Runs the real `pastiche` binary (bin/pastiche.js through tsx) as a child process. */
import { spawn, type ChildProcess } from 'node:child_process';
import { readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { projectRoot } from './data.js';

export interface CliResult {
  readonly code: number | null;
  readonly signal: NodeJS.Signals | null;
  readonly stdout: string;
  readonly stderr: string;
  /** The non-empty lines of stderr. */
  readonly errorLines: string[];
  /** With `measureRss`: the child's peak resident memory in MiB (its own maxRSS, read at exit). */
  readonly peakRssMiB?: number;
}

export interface CliOptions {
  /** Added to (and overriding) this process's environment; `undefined` removes a variable. */
  readonly env?: Readonly<Record<string, string | undefined>>;
  /** Called with the child once it is spawned (e.g. to send it a signal). */
  readonly onSpawn?: (child: ChildProcess) => void;
  /** Kill the child after this many ms (default 60 s) so a hung run fails instead of stalling the suite. */
  readonly timeoutMs?: number;
  /** Record the child's peak RSS (see {@link CliResult.peakRssMiB}). */
  readonly measureRss?: boolean;
  /** Working directory (default: the project root). */
  readonly cwd?: string;
}

let rssFiles = 0;

/**
 * A preload for the child that writes `process.resourceUsage().maxRSS` (KiB) to $PASTICHE_TEST_MAXRSS
 * when it exits: the kernel's own high-water mark, so no peak between two polls is missed.
 */
const RSS_PRELOAD = "--import=data:text/javascript,import{writeFileSync}from'node:fs';" +
  "process.on('exit',()=>writeFileSync(process.env.PASTICHE_TEST_MAXRSS,String(process.resourceUsage().maxRSS)))";

/** Runs `pastiche <args>` (in the project root unless `cwd` says otherwise) and collects its exit code and output. */
export async function runCli(args: readonly string[], options: CliOptions = {}): Promise<CliResult> {
  if (!options.measureRss) return spawnCli(args, options, undefined);
  const rssFile = join(tmpdir(), `pastiche-test-maxrss-${process.pid}-${rssFiles++}`);
  try {
    const result = await spawnCli(args, options, rssFile);
    const kib = Number(await readFile(rssFile, 'utf8').catch(() => 'NaN'));
    return { ...result, peakRssMiB: kib / 1024 };
  } finally {
    await rm(rssFile, { force: true });
  }
}

function spawnCli(args: readonly string[], options: CliOptions, rssFile: string | undefined): Promise<CliResult> {
  const env: Record<string, string> = {};
  for (const [k, v] of Object.entries({ ...process.env, ...options.env })) if (v !== undefined) env[k] = v;
  if (rssFile !== undefined) {
    env.PASTICHE_TEST_MAXRSS = rssFile;
    env.NODE_OPTIONS = `${env.NODE_OPTIONS ?? ''} ${RSS_PRELOAD}`.trim();
  }
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [join(projectRoot, 'bin', 'pastiche.js'), ...args], {
      cwd: options.cwd ?? projectRoot, env, stdio: ['ignore', 'pipe', 'pipe'],
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
