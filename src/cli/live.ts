/** `pastiche live`: stylise a camera, the screen, a stream or stdin as it arrives. */
import { Command, Option } from 'commander';
import { openStyleModel } from '../style/model.js';
import { LIVE_DEFAULT_SIZE, stylizeLive } from '../style/live.js';
import { COLOR_MODES } from '../style/transfer.js';
import { LIVE_FORMATS, planLiveSource, type LiveFormat } from '../video/live-source.js';
import { checkLiveOutput, planLiveOutput, WINDOW_OUTPUT } from '../video/live-sink.js';
import type { LiveProgress } from '../video/live.js';
import { checkLiveSource } from '../video/live-source.js';
import { parseInteger, parseNumber } from '../util/validate.js';
import { addRuntimeOptions, interruptSignal, report, runtimeOptions } from './common.js';
import { createProgressBar } from './progress.js';

interface LiveFlags {
  model: string;
  output?: string;
  window?: boolean;
  format?: LiveFormat;
  inputSize?: string;
  inputRate?: string;
  size?: string;
  frames?: string;
  duration?: string;
  strength?: string;
  preserveColors?: (typeof COLOR_MODES)[number];
  temporal?: string;
  margin?: string;
  crf?: string;
  threads?: string;
  executionProvider?: string;
  json?: boolean;
}

const detail = (p: LiveProgress): string =>
  `· in ${p.inputFps.toFixed(1)} fps · out ${p.outputFps.toFixed(1)} fps · dropped ${p.dropped} · latency ${Math.round(p.latencyMs)} ms`;

async function run(source: string, flags: LiveFlags): Promise<void> {
  if (flags.window === true && flags.output !== undefined && flags.output !== WINDOW_OUTPUT) {
    throw new TypeError(`Expected either --window or -o, not both, but received --window and -o ${flags.output}`);
  }
  const options = {
    format: flags.format,
    inputSize: flags.inputSize,
    inputRate: flags.inputRate === undefined ? undefined : parseNumber('--input-rate', flags.inputRate, 0.1, 1000),
    size: flags.size === undefined ? LIVE_DEFAULT_SIZE : parseInteger('--size', flags.size, 8, 16384),
    frames: flags.frames === undefined ? undefined : parseInteger('--frames', flags.frames, 1),
    duration: flags.duration === undefined ? undefined : parseNumber('--duration', flags.duration, 0.001),
    strength: flags.strength === undefined ? undefined : parseNumber('--strength', flags.strength, 0, 1),
    preserveColors: flags.preserveColors,
    temporal: flags.temporal === undefined ? undefined : parseNumber('--temporal', flags.temporal, 0, 1),
    margin: flags.margin === undefined ? undefined : parseInteger('--margin', flags.margin, 0, 1024),
    crf: flags.crf === undefined ? undefined : parseInteger('--crf', flags.crf, 0, 51),
  };
  // Source and output are checked before the model loads: a wrong device fails in a moment.
  const plan = planLiveSource(source, options);
  const output = planLiveOutput(flags.window === true ? WINDOW_OUTPUT : flags.output, `pastiche live: ${flags.model}`);
  await checkLiveSource(plan);
  await checkLiveOutput(output, plan.kind === 'file' ? [source] : []);
  const style = await openStyleModel(flags.model, runtimeOptions(flags));
  const { signal, dispose } = interruptSignal();
  const json = Boolean(flags.json);
  const bar = createProgressBar('live', 'frames', { enabled: !json && process.stderr.isTTY });
  try {
    // The first Ctrl-C (or SIGTERM) ends the run as --frames would: the file is finished, not thrown away.
    const result = await stylizeLive(style, source, output, { ...options, stop: signal, onProgress: (p) => bar.update(p.frame, p.total, detail(p)) });
    bar.done();
    report(json, result, `${result.output}: ${result.frames} frames ${result.width}x${result.height} @ ${result.fps} ` +
      `(${result.stylized} stylised, ${result.dropped} dropped; in ${result.inputFps.toFixed(1)} fps, ` +
      `out ${result.outputFps.toFixed(1)} fps, latency ${Math.round(result.latencyMs)} ms)`);
    // Stopped by a signal: the output is whole, and the exit code still says which signal (130, 143).
    if (result.stoppedBy === 'stop') process.exitCode = 130;
  } finally {
    bar.done();
    dispose();
  }
}

export function liveCommand(): Command {
  const command = new Command('live')
    .description('Stylise a camera, the screen, a stream or stdin live, into a window, a video file or a stream; frames that arrive while one is being stylised are dropped (the last output is repeated in their place)')
    .argument('<source>', "/dev/videoN (v4l2), 'screen' (x11grab of $DISPLAY), a stream URL (rtsp, rtmp, http(s), udp, tcp, srt), a video file, '-' for stdin, or what --format reads (e.g. --format lavfi testsrc2=size=640x480:rate=30)")
    .requiredOption('-m, --model <model>', 'a model store name (see `pastiche models list`), an .onnx file, or a checkpoint folder')
    .option('-o, --output <path|url>', `a video file (.mp4, .m4v, .mov, .mkv), a stream URL (rtmp:// as flv; udp://, tcp://, srt:// as mpegts; rtsp://), or ${WINDOW_OUTPUT} (default: a window)`)
    .option('--window', 'show the output in a window (needs ffplay) (default when -o is not given)')
    .addOption(new Option('--format <name>', 'how ffmpeg reads the source (default: guessed from it)').choices([...LIVE_FORMATS]))
    .option('--input-size <WxH>', 'capture size asked of a camera or the screen; the size of raw frames on stdin (--format rawvideo, RGB24) (default: the device\'s)')
    .option('--input-rate <fps>', 'capture rate asked of a camera or the screen; the rate of raw frames on stdin (default: 30)')
    .option('--size <pixels>', `scale frames so the longer side has at most this many pixels (default: ${LIVE_DEFAULT_SIZE})`)
    .option('--frames <n>', 'stop after writing this many frames (default: run until Ctrl-C or the source ends)')
    .option('--duration <seconds>', 'stop after this many seconds of the source (default: run until Ctrl-C or the source ends)')
    .option('--strength <0..1>', 'how much style: 0 returns the content, 1 the full network output (default: 1)')
    .addOption(new Option('--preserve-colors <mode>', "keep the content's colours: luminance or histogram (default: off)").choices([...COLOR_MODES]))
    .option('--temporal <0..1>', 'against flicker, keep this much of the previous output where the input is unchanged (default: 0, off)')
    .option('--margin <pixels>', 'reflected border added while the network runs, hiding its edge frame; 0 is fastest (default: 48 for imported and zero-padded networks, 0 for the reflection-padded pastiche architectures)')
    .option('--crf <0..51>', 'H.264 quality of a file or stream, lower is better (default: 18 for files, 23 for streams)')
    .option('--json', 'print the result as JSON on stdout', false);
  addRuntimeOptions(command);
  return command.action(async (source: string, flags: LiveFlags) => run(source, flags));
}
