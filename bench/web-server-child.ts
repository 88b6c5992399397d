// Child process of bench/web.ts: `pastiche serve` with its default limits on a free port over the
// store in $PASTICHE_HOME, alone in its process so its RSS is its own. Prints {url} as one JSON
// line, then serves until stdin closes or SIGTERM, and closes the server cleanly.
import { startServer } from '../src/server/app.js';

const server = await startServer({ port: 0, log: (line) => process.stderr.write(`${line}\n`) });
process.stdout.write(`${JSON.stringify({ url: server.url, pid: process.pid, limits: server.limits })}\n`);
let stopping = false;
const stop = async (): Promise<void> => {
  if (stopping) return;
  stopping = true;
  await server.close();
  process.exit(0);
};
process.stdin.on('end', () => void stop());
process.stdin.on('close', () => void stop());
process.stdin.resume();
process.on('SIGTERM', () => void stop());
