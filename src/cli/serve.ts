/** `pastiche serve`: the web page and the HTTP API (stylize, model files, jobs) on this machine, until Ctrl-C or SIGTERM. */
import { Command } from 'commander';
import { DEFAULT_LIMITS } from '../server/limits.js';
import { startServer } from '../server/app.js';
import { parseInteger, parseNumber } from '../util/validate.js';
import { addRuntimeOptions, interruptSignal, runtimeOptions } from './common.js';

interface ServeFlags {
  port: string;
  host: string;
  token?: string;
  maxUpload?: string;
  maxConcurrent?: string;
  threads?: string;
  executionProvider?: string;
}

const MiB = 2 ** 20;

async function run(flags: ServeFlags): Promise<void> {
  const port = parseInteger('--port', flags.port, 0, 65535);
  const limits = {
    maxUploadBytes: flags.maxUpload === undefined ? undefined : Math.round(parseNumber('--max-upload', flags.maxUpload, 0.001, 1024 * 1024) * MiB),
    maxConcurrent: flags.maxConcurrent === undefined ? undefined : parseInteger('--max-concurrent', flags.maxConcurrent, 1, 1024),
  };
  const token = flags.token ?? process.env.PASTICHE_TOKEN;
  const server = await startServer({
    port, host: flags.host, token, runtime: runtimeOptions(flags),
    limits: Object.fromEntries(Object.entries(limits).filter(([, v]) => v !== undefined)),
  });
  process.stderr.write(`pastiche serve: listening on ${server.url}${token === undefined ? '' : ' (bearer token required)'}; Ctrl-C to stop\n`);
  const { signal, dispose } = interruptSignal();
  try {
    await new Promise<void>((resolve) => signal.addEventListener('abort', () => resolve(), { once: true }));
    await server.close();
    // main turns 130 into the code for the signal that stopped us (130 Ctrl-C, 143 SIGTERM).
    process.exitCode = 130;
  } finally {
    dispose();
  }
}

export function serveCommand(): Command {
  const command = new Command('serve')
    .description('Serve the web page (live webcam, photos, jobs; open the printed URL) and the HTTP API: POST /api/stylize, GET /api/models and /models/<name>.onnx, and jobs (video, optimize) with progress events')
    .option('--port <n>', 'port to listen on; 0 picks a free one', '8080')
    .option('--host <address>', 'address to listen on; anything but loopback (127.0.0.1, ::1, localhost) needs --token', '127.0.0.1')
    .option('--token <secret>', `bearer token every /api and /models request must send (Authorization: Bearer <token>), at least 16 characters; also read from PASTICHE_TOKEN (default: none, only allowed on loopback)`)
    .option('--max-upload <MiB>', `largest upload, refused with 413 while it streams (default: ${DEFAULT_LIMITS.maxUploadBytes / MiB})`)
    .option('--max-concurrent <n>', `stylize requests run at once; ${DEFAULT_LIMITS.maxQueued} more wait, the rest get 503 with Retry-After (default: ${DEFAULT_LIMITS.maxConcurrent})`);
  addRuntimeOptions(command);
  return command.action(async (flags: ServeFlags) => run(flags));
}
