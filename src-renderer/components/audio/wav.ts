/**
 * Small WAV helpers for the renderer (the engine's wav.ts reads files with Node APIs): decode the
 * 16-bit clips sessions store, encode 16-bit mono WAV (gain-scaled perturbations, microphone
 * recordings), base64 for audio.upload.
 */

export interface PcmClip {
  samples: Float32Array;
  sampleRate: number;
}

const FORMATS: Record<number, string> = { 1: 'PCM', 2: 'Microsoft ADPCM', 3: 'IEEE float', 6: 'A-law', 7: 'mu-law', 17: 'IMA ADPCM', 49: 'GSM 6.10', 85: 'MPEG Layer 3 (MP3)' };

function fourcc(v: DataView, o: number): string {
  return String.fromCharCode(v.getUint8(o), v.getUint8(o + 1), v.getUint8(o + 2), v.getUint8(o + 3));
}

/** Decodes PCM 8/16/24/32-bit or float32 WAV, mixed to mono. Throws with `name` and the problem. */
export function decodeWav(buf: ArrayBuffer, name = 'clip'): PcmClip {
  const v = new DataView(buf);
  if (buf.byteLength === 0) throw new Error(`${name}: the file is empty (0 bytes)`);
  if (buf.byteLength < 12 || fourcc(v, 0) !== 'RIFF' || fourcc(v, 8) !== 'WAVE') throw new Error(`${name}: not a WAV file (no RIFF/WAVE header)`);
  let fmt = -1, data = -1, dataSize = 0;
  for (let o = 12; o + 8 <= buf.byteLength; ) {
    const id = fourcc(v, o), size = v.getUint32(o + 4, true);
    if (id === 'fmt ') fmt = o + 8;
    if (id === 'data') { data = o + 8; dataSize = Math.min(size, buf.byteLength - data); }
    o += 8 + size + (size & 1);
  }
  if (fmt < 0 || data < 0) throw new Error(`${name}: no fmt or data chunk`);
  let code = v.getUint16(fmt, true);
  if (code === 0xfffe) code = v.getUint16(fmt + 24, true);
  const channels = v.getUint16(fmt + 2, true), sampleRate = v.getUint32(fmt + 4, true), bits = v.getUint16(fmt + 14, true);
  const bps = bits / 8, frames = Math.floor(dataSize / (bps * channels));
  const read =
    code === 3 && bits === 32 ? (p: number) => v.getFloat32(p, true)
    : code === 1 && bits === 16 ? (p: number) => v.getInt16(p, true) / 32768
    : code === 1 && bits === 8 ? (p: number) => (v.getUint8(p) - 128) / 128
    : code === 1 && bits === 24 ? (p: number) => (v.getUint8(p) | (v.getUint8(p + 1) << 8) | (v.getInt8(p + 2) << 16)) / 8388608
    : code === 1 && bits === 32 ? (p: number) => v.getInt32(p, true) / 2147483648
    : null;
  if (!read) {
    const what = FORMATS[code] ? `${FORMATS[code]} (format code ${code})` : `format code ${code}`;
    throw new Error(`${name}: unsupported encoding ${what}, ${bits} bits: only PCM (8-32 bit) and 32-bit float are read; convert it first`);
  }
  if (frames === 0) throw new Error(`${name}: the clip is empty (the data chunk holds no samples)`);
  const samples = new Float32Array(frames);
  for (let i = 0, p = data; i < frames; i++) {
    let s = 0;
    for (let c = 0; c < channels; c++, p += bps) s += read(p);
    samples[i] = s / channels;
  }
  return { samples, sampleRate };
}

/** Mono 16-bit PCM WAV; samples are scaled by `gain`, rounded and clipped to the 16-bit range. */
export function encodeWav16(samples: Float32Array, sampleRate: number, gain = 1): ArrayBuffer {
  const buf = new ArrayBuffer(44 + samples.length * 2);
  const v = new DataView(buf);
  const put = (o: number, s: string) => { for (let i = 0; i < 4; i++) v.setUint8(o + i, s.charCodeAt(i)); };
  put(0, 'RIFF'); v.setUint32(4, 36 + samples.length * 2, true); put(8, 'WAVE');
  put(12, 'fmt '); v.setUint32(16, 16, true); v.setUint16(20, 1, true); v.setUint16(22, 1, true);
  v.setUint32(24, sampleRate, true); v.setUint32(28, sampleRate * 2, true); v.setUint16(32, 2, true); v.setUint16(34, 16, true);
  put(36, 'data'); v.setUint32(40, samples.length * 2, true);
  for (let i = 0; i < samples.length; i++) {
    const k = Math.round(samples[i] * gain * 32768);
    v.setInt16(44 + 2 * i, Math.max(-32768, Math.min(32767, Number.isFinite(k) ? k : 0)), true);
  }
  return buf;
}

/** Peak magnitude. */
export function peak(samples: Float32Array): number {
  let p = 0;
  for (let i = 0; i < samples.length; i++) p = Math.max(p, Math.abs(samples[i]));
  return p;
}

/** Base64 of bytes, in chunks (String.fromCharCode on a large array overflows the stack). */
export function toBase64(bytes: Uint8Array): string {
  let s = '';
  for (let i = 0; i < bytes.length; i += 0x8000) s += String.fromCharCode(...bytes.subarray(i, i + 0x8000));
  return btoa(s);
}

/** Mixes an AudioBuffer (e.g. a decoded microphone recording) down to mono. */
export function audioBufferToMono(b: AudioBuffer): Float32Array {
  const out = new Float32Array(b.length);
  for (let c = 0; c < b.numberOfChannels; c++) {
    const d = b.getChannelData(c);
    for (let i = 0; i < out.length; i++) out[i] += d[i] / b.numberOfChannels;
  }
  return out;
}
