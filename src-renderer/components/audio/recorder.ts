/**
 * Microphone capture: MediaRecorder records the microphone, the recording is decoded with the Web
 * Audio API to PCM, mixed to mono and encoded as 16-bit WAV at the capture rate (the engine resamples
 * it to the model's rate with its own low-pass resampler).
 */
import { audioBufferToMono, encodeWav16 } from './wav';

export interface Recording {
  wav: Uint8Array<ArrayBuffer>;
  sampleRate: number;
  seconds: number;
}

/** Why capture cannot start here, or null when the browser has the APIs. */
export function microphoneUnavailable(): string | null {
  if (!window.isSecureContext) return 'Microphone capture needs a secure page (the Electron app, or the advlab serve URL on 127.0.0.1).';
  if (!navigator.mediaDevices?.getUserMedia) return 'Microphone capture is not available in this browser (no getUserMedia).';
  if (typeof MediaRecorder === 'undefined') return 'Microphone capture is not available in this browser (no MediaRecorder).';
  return null;
}

/** A readable reason for a getUserMedia / decoding failure. */
export function microphoneError(e: unknown): string {
  const err = e as { name?: string; message?: string };
  switch (err?.name) {
    case 'NotFoundError':
    case 'OverconstrainedError':
      return 'No microphone found: connect one, or import a WAV file instead.';
    case 'NotAllowedError':
    case 'SecurityError':
      return 'Microphone access was refused: allow it for this page, or import a WAV file instead.';
    case 'NotReadableError':
      return 'The microphone is in use by another program or cannot be read.';
    default:
      return `Microphone capture failed: ${err?.name ?? 'Error'}: ${err?.message ?? String(e)}`;
  }
}

export class MicRecorder {
  private stream: MediaStream | null = null;
  private recorder: MediaRecorder | null = null;
  private chunks: Blob[] = [];
  private started = 0;

  async start(): Promise<void> {
    const why = microphoneUnavailable();
    if (why) throw new Error(why);
    this.stream = await navigator.mediaDevices.getUserMedia({ audio: { channelCount: 1, echoCancellation: false, noiseSuppression: false, autoGainControl: false } });
    this.chunks = [];
    this.recorder = new MediaRecorder(this.stream);
    this.recorder.ondataavailable = (e) => { if (e.data.size) this.chunks.push(e.data); };
    this.recorder.start();
    this.started = performance.now();
  }

  get recording(): boolean {
    return this.recorder?.state === 'recording';
  }

  elapsed(): number {
    return this.recording ? (performance.now() - this.started) / 1000 : 0;
  }

  /** Stops and returns the recording as WAV. */
  async stop(): Promise<Recording> {
    const rec = this.recorder;
    if (!rec) throw new Error('Not recording');
    const stopped = new Promise<void>((resolve) => (rec.onstop = () => resolve()));
    if (rec.state !== 'inactive') rec.stop();
    await stopped;
    this.release();
    const blob = new Blob(this.chunks, { type: rec.mimeType });
    if (blob.size === 0) throw new Error('The recording is empty');
    const ctx = new AudioContext();
    try {
      const buf = await ctx.decodeAudioData(await blob.arrayBuffer());
      const mono = audioBufferToMono(buf);
      return { wav: new Uint8Array(encodeWav16(mono, buf.sampleRate)), sampleRate: buf.sampleRate, seconds: buf.duration };
    } finally {
      void ctx.close();
    }
  }

  /** Stops capture without keeping anything. */
  release(): void {
    for (const t of this.stream?.getTracks() ?? []) t.stop();
    this.stream = null;
    if (this.recorder && this.recorder.state !== 'inactive') this.recorder.stop();
    this.recorder = null;
  }
}
