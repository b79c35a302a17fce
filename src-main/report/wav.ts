/**
 * Just enough of RIFF/WAVE to draw a waveform: the format chunk and a peak envelope of the samples.
 * Pure (Uint8Array in, numbers out), so the viewer and the report share it.
 */

export interface WavInfo {
  /** 1 = integer PCM, 3 = IEEE float (WAVE_FORMAT_EXTENSIBLE is resolved to its sub-format). */
  format: number;
  channels: number;
  sampleRate: number;
  bitsPerSample: number;
  frames: number;
  durationSec: number;
  dataOffset: number;
  dataBytes: number;
}

/** Reads the header; throws an Error naming the problem for anything that is not a PCM or float WAV. */
export function wavInfo(bytes: Uint8Array): WavInfo {
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const tag = (o: number) => String.fromCharCode(bytes[o], bytes[o + 1], bytes[o + 2], bytes[o + 3]);
  if (bytes.length < 12 || tag(0) !== 'RIFF' || tag(8) !== 'WAVE') throw new Error('not a RIFF/WAVE file');
  let fmt: Omit<WavInfo, 'frames' | 'durationSec' | 'dataOffset' | 'dataBytes'> | null = null;
  let o = 12;
  while (o + 8 <= bytes.length) {
    const id = tag(o);
    const size = view.getUint32(o + 4, true);
    const body = o + 8;
    if (id === 'fmt ') {
      if (size < 16 || body + 16 > bytes.length) throw new Error('truncated fmt chunk');
      let format = view.getUint16(body, true);
      const bitsPerSample = view.getUint16(body + 14, true);
      if (format === 0xfffe && size >= 40 && body + 26 <= bytes.length) format = view.getUint16(body + 24, true);
      fmt = { format, channels: view.getUint16(body + 2, true), sampleRate: view.getUint32(body + 4, true), bitsPerSample };
    } else if (id === 'data') {
      if (!fmt) throw new Error('data chunk before the fmt chunk');
      if (fmt.format !== 1 && fmt.format !== 3) throw new Error(`unsupported WAV format ${fmt.format} (only PCM and float)`);
      if (fmt.channels < 1 || fmt.sampleRate < 1 || ![8, 16, 24, 32].includes(fmt.bitsPerSample)) throw new Error(`unsupported WAV layout (${fmt.channels} channels, ${fmt.bitsPerSample} bits)`);
      const dataBytes = Math.min(size, bytes.length - body);
      const frames = Math.floor(dataBytes / ((fmt.bitsPerSample / 8) * fmt.channels));
      return { ...fmt, frames, durationSec: frames / fmt.sampleRate, dataOffset: body, dataBytes };
    }
    o = body + size + (size % 2);
  }
  throw new Error(fmt ? 'no data chunk' : 'no fmt chunk');
}

/** Sample `frame` of channel 0 in [-1, 1]. */
function sampleAt(view: DataView, info: WavInfo, frame: number): number {
  const bps = info.bitsPerSample / 8;
  const o = info.dataOffset + frame * bps * info.channels;
  if (info.format === 3) return info.bitsPerSample === 32 ? view.getFloat32(o, true) : 0;
  switch (info.bitsPerSample) {
    case 8:
      return (view.getUint8(o) - 128) / 128;
    case 16:
      return view.getInt16(o, true) / 32768;
    case 24: {
      const v = view.getUint8(o) | (view.getUint8(o + 1) << 8) | (view.getInt8(o + 2) << 16);
      return v / 8388608;
    }
    default:
      return view.getInt32(o, true) / 2147483648;
  }
}

/** Peak |amplitude| of channel 0 in `buckets` equal spans of the clip (each in 0..1). */
export function wavPeaks(bytes: Uint8Array, buckets = 480, info: WavInfo = wavInfo(bytes)): number[] {
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const n = Math.max(1, Math.min(buckets, info.frames));
  const out = new Array<number>(n).fill(0);
  if (info.frames === 0) return out;
  // Very long clips: look at no more than ~200k samples (a stride within each bucket).
  const stride = Math.max(1, Math.floor(info.frames / 200_000));
  for (let b = 0; b < n; b++) {
    const start = Math.floor((b * info.frames) / n);
    const end = Math.floor(((b + 1) * info.frames) / n);
    let peak = 0;
    for (let f = start; f < end; f += stride) {
      const v = Math.abs(sampleAt(view, info, f));
      if (v > peak) peak = v;
    }
    out[b] = Math.min(1, Number(peak.toFixed(4)));
  }
  return out;
}
