/** Video through ffmpeg: raw RGB24 frames in and out, audio passed through. */
export { ffmpegPath, checkFfmpeg, probeVideo, countFrames, parseRate, type VideoInfo } from './ffmpeg.js';
export { decodeFrames, type DecodeOptions } from './decode.js';
export { checkVideoOutput, createEncoder, evenSize, x264Presets, type EncoderOptions, type VideoEncoder } from './encode.js';
export { processVideo, type ProcessVideoOptions, type ProcessVideoResult, type VideoProgress } from './pipeline.js';
export { readAhead } from './read-ahead.js';
