/**
 * RIFF/WAVE reading and writing.
 *
 * Reads integer PCM (8-bit unsigned, 16/24/32-bit signed) and IEEE float (32/64-bit), as format
 * code 1 / 3 or as WAVE_FORMAT_EXTENSIBLE (0xFFFE) with the PCM / float sub-format; any number of
 * channels up to MAX_WAV_CHANNELS (mixed down to mono by averaging), sample rates from
 * MIN_WAV_SAMPLE_RATE to MAX_WAV_SAMPLE_RATE, clips up to MAX_WAV_SECONDS long and files up to
 * MAX_WAV_FILE_BYTES. Unknown chunks (LIST, fact, cue, ...) are skipped. Float samples must be
 * finite (NaN or Infinity is refused, not passed on to a model). Anything else is a clear badFile
 * error that names the file and the problem.
 *
 * Scaling: an n-bit integer sample k maps to k / 2^(n-1) (8-bit: (k - 128) / 128), so full scale is
 * [-1, 1). `write16` uses the same scale, so read(write16(x)) === quantize16(x) exactly.
 */
import { readFile, stat } from 'node:fs/promises';
import { AdvlabError, badFile, badInput } from '../errors';

/** A decoded clip, mixed down to mono. */
export interface WavAudio {
  /** Mono samples, nominally in [-1, 1]. */
  samples: Float32Array;
  sampleRate: number;
  /** Channels in the file (before the mixdown). */
  channels: number;
  /** Bits per sample of the container (8, 16, 24, 32 or 64). */
  bitsPerSample: number;
  encoding: 'pcm' | 'float';
  /** True when the fmt chunk was WAVE_FORMAT_EXTENSIBLE. */
  extensible: boolean;
  /** Length in seconds. */
  duration: number;
}

/** Lowest sample rate read (telephone speech, FSDD), in Hz. */
export const MIN_WAV_SAMPLE_RATE = 8_000;
/** Highest sample rate read (studio audio), in Hz. */
export const MAX_WAV_SAMPLE_RATE = 192_000;
/** Most channels read (7.1 surround). */
export const MAX_WAV_CHANNELS = 8;
/** Longest clip read, in seconds (10 minutes). */
export const MAX_WAV_SECONDS = 600;
/** Largest WAV file read from disk, in bytes (256 MiB; 10 minutes of 48 kHz stereo 16-bit is 115 MB). */
export const MAX_WAV_FILE_BYTES = 256 * 1024 * 1024;

const FORMAT_PCM = 0x0001;
const FORMAT_FLOAT = 0x0003;
const FORMAT_EXTENSIBLE = 0xfffe;

/** Names of common WAVE format codes, for error messages. */
const FORMAT_NAMES: Record<number, string> = {
  0x0001: 'PCM',
  0x0002: 'Microsoft ADPCM',
  0x0003: 'IEEE float',
  0x0006: 'A-law',
  0x0007: 'mu-law',
  0x0011: 'IMA ADPCM',
  0x0016: 'ITU G.723 ADPCM',
  0x0031: 'GSM 6.10',
  0x0040: 'ITU G.721 ADPCM',
  0x0050: 'MPEG',
  0x0055: 'MPEG Layer 3 (MP3)',
  0x0161: 'Windows Media Audio',
  0xfffe: 'WAVE_FORMAT_EXTENSIBLE',
};

function formatName(code: number): string {
  const hex = `0x${code.toString(16).padStart(4, '0')}`;
  return FORMAT_NAMES[code] ? `${FORMAT_NAMES[code]} (format code ${hex})` : `format code ${hex}`;
}

/** Bytes 4..15 shared by every KSDATAFORMAT_SUBTYPE_* GUID that wraps a plain format code. */
const GUID_TAIL = [0x00, 0x00, 0x10, 0x00, 0x80, 0x00, 0x00, 0xaa, 0x00, 0x38, 0x9b, 0x71];

function fourcc(view: DataView, offset: number): string {
  return String.fromCharCode(view.getUint8(offset), view.getUint8(offset + 1), view.getUint8(offset + 2), view.getUint8(offset + 3));
}

/**
 * Decodes a WAV file held in memory. `file` only names the source in error messages.
 * Throws badFile for anything that is not a readable PCM / float WAV with at least one sample.
 */
export function readWav(bytes: Uint8Array, file = '<buffer>'): WavAudio {
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  if (bytes.byteLength < 12) throw badFile(file, `not a WAV file (only ${bytes.byteLength} bytes; a RIFF/WAVE header needs 12)`);
  const riff = fourcc(view, 0);
  if (riff === 'RIFX') throw badFile(file, 'big-endian RIFX WAV files are not supported');
  if (riff === 'RF64') throw badFile(file, 'RF64 (64-bit) WAV files are not supported');
  if (riff !== 'RIFF' || fourcc(view, 8) !== 'WAVE') throw badFile(file, `not a WAV file (no RIFF/WAVE header; starts with "${riff.replace(/[^\x20-\x7e]/g, '?')}")`);

  let fmt: { offset: number; size: number } | null = null;
  let data: { offset: number; size: number } | null = null;
  let offset = 12;
  while (offset + 8 <= bytes.byteLength) {
    const id = fourcc(view, offset);
    const size = view.getUint32(offset + 4, true);
    const body = offset + 8;
    const available = bytes.byteLength - body;
    if (id === 'fmt ') {
      if (size < 16) throw badFile(file, `fmt chunk is too short (${size} bytes, needs at least 16)`);
      if (size > available) throw badFile(file, `truncated fmt chunk (declares ${size} bytes, ${available} present)`);
      fmt = { offset: body, size };
    } else if (id === 'data') {
      if (size > available) throw badFile(file, `truncated data chunk (declares ${size} bytes, ${available} present)`);
      data = { offset: body, size };
    }
    offset = body + size + (size & 1); // chunks are padded to an even length
  }
  if (!fmt) throw badFile(file, 'no fmt chunk (truncated or not a WAV file)');
  if (!data) throw badFile(file, 'no data chunk (truncated or not a WAV file)');

  let code = view.getUint16(fmt.offset, true);
  const channels = view.getUint16(fmt.offset + 2, true);
  const sampleRate = view.getUint32(fmt.offset + 4, true);
  const blockAlign = view.getUint16(fmt.offset + 12, true);
  const bitsPerSample = view.getUint16(fmt.offset + 14, true);
  let extensible = false;
  if (code === FORMAT_EXTENSIBLE) {
    extensible = true;
    if (fmt.size < 40) throw badFile(file, `WAVE_FORMAT_EXTENSIBLE fmt chunk is too short (${fmt.size} bytes, needs 40)`);
    const guid = fmt.offset + 24;
    code = view.getUint16(guid, true);
    const tailMatches = view.getUint16(guid + 2, true) === 0 && GUID_TAIL.every((b, i) => view.getUint8(guid + 4 + i) === b);
    if (!tailMatches) throw badFile(file, 'unsupported WAVE_FORMAT_EXTENSIBLE sub-format GUID (only PCM and IEEE float are read)');
  }
  if (code !== FORMAT_PCM && code !== FORMAT_FLOAT) {
    throw badFile(file, `unsupported encoding ${formatName(code)}${extensible ? ' inside WAVE_FORMAT_EXTENSIBLE' : ''}: only PCM and IEEE float are read; convert it first (e.g. sox in.wav -e signed-integer -b 16 out.wav)`, { formatCode: code });
  }
  if (channels === 0) throw badFile(file, 'fmt chunk declares 0 channels');
  if (channels > MAX_WAV_CHANNELS) throw badFile(file, `${channels} channels: at most ${MAX_WAV_CHANNELS} (MAX_WAV_CHANNELS) are read`, { channels });
  if (sampleRate === 0) throw badFile(file, 'fmt chunk declares a sample rate of 0');
  if (sampleRate < MIN_WAV_SAMPLE_RATE || sampleRate > MAX_WAV_SAMPLE_RATE) {
    throw badFile(file, `sample rate ${sampleRate} Hz is outside ${MIN_WAV_SAMPLE_RATE}..${MAX_WAV_SAMPLE_RATE} Hz (MIN_WAV_SAMPLE_RATE..MAX_WAV_SAMPLE_RATE); resample it first (e.g. sox in.wav -r 16000 out.wav)`, { sampleRate });
  }
  const encoding = code === FORMAT_FLOAT ? 'float' : 'pcm';
  const okBits = encoding === 'float' ? [32, 64] : [8, 16, 24, 32];
  if (!okBits.includes(bitsPerSample)) {
    throw badFile(file, `unsupported ${encoding === 'float' ? 'IEEE float' : 'PCM'} sample size of ${bitsPerSample} bits (supported: ${okBits.join(', ')})`);
  }
  const bytesPerSample = bitsPerSample / 8;
  if (blockAlign !== channels * bytesPerSample) {
    throw badFile(file, `inconsistent fmt chunk: block align ${blockAlign} is not ${channels} channels x ${bytesPerSample} bytes`);
  }
  if (data.size === 0) throw badFile(file, 'the clip is empty (the data chunk holds no samples)');
  if (data.size % blockAlign !== 0) {
    throw badFile(file, `truncated data chunk (${data.size} bytes is not a whole number of ${blockAlign}-byte sample frames)`);
  }

  const frames = data.size / blockAlign;
  if (frames / sampleRate > MAX_WAV_SECONDS) {
    throw badFile(file, `the clip is ${(frames / sampleRate).toFixed(1)} s long: at most ${MAX_WAV_SECONDS} s (MAX_WAV_SECONDS) are read; cut it first`, { seconds: frames / sampleRate });
  }
  const samples = new Float32Array(frames);
  const read = sampleReader(view, encoding, bitsPerSample);
  let p = data.offset;
  for (let i = 0; i < frames; i++) {
    let sum = 0;
    for (let c = 0; c < channels; c++, p += bytesPerSample) {
      const v = read(p);
      if (!Number.isFinite(v)) {
        throw badFile(file, `sample ${i} (channel ${c + 1}, at ${(i / sampleRate).toFixed(3)} s) is ${v} (not a finite number): the float data is corrupt`, { frame: i, channel: c });
      }
      // A 64-bit float beyond the 32-bit range (|v| > 3.4e38) would turn into Infinity in the clip.
      if (Math.abs(Math.fround(v)) === Infinity) {
        throw badFile(file, `sample ${i} (channel ${c + 1}, at ${(i / sampleRate).toFixed(3)} s) is ${v}, beyond the 32-bit float range samples are held in: the float data is corrupt`, { frame: i, channel: c });
      }
      sum += v;
    }
    samples[i] = sum / channels;
  }
  return { samples, sampleRate, channels, bitsPerSample, encoding, extensible, duration: frames / sampleRate };
}

function sampleReader(view: DataView, encoding: 'pcm' | 'float', bits: number): (p: number) => number {
  if (encoding === 'float') return bits === 32 ? (p) => view.getFloat32(p, true) : (p) => view.getFloat64(p, true);
  switch (bits) {
    case 8:
      return (p) => (view.getUint8(p) - 128) / 128;
    case 16:
      return (p) => view.getInt16(p, true) / 32768;
    case 24:
      return (p) => {
        const v = view.getUint8(p) | (view.getUint8(p + 1) << 8) | (view.getInt8(p + 2) << 16);
        return v / 8388608;
      };
    default:
      return (p) => view.getInt32(p, true) / 2147483648;
  }
}

/** Reads and decodes a WAV file from disk (errors name the path); files over MAX_WAV_FILE_BYTES are refused unread. */
export async function readWavFile(path: string): Promise<WavAudio> {
  let bytes: Buffer;
  try {
    const st = await stat(path);
    if (!st.isFile()) throw badFile(path, 'is not a regular file (a device, FIFO or socket is never read)');
    if (st.size > MAX_WAV_FILE_BYTES) return tooBig(path, st.size);
    bytes = await readFile(path);
  } catch (e) {
    if (e instanceof AdvlabError) throw e;
    throw badFile(path, `cannot be read (${(e as NodeJS.ErrnoException).code ?? (e as Error).message})`);
  }
  if (bytes.byteLength > MAX_WAV_FILE_BYTES) return tooBig(path, bytes.byteLength); // grew since the stat
  return readWav(bytes, path);
}

function tooBig(path: string, size: number): never {
  throw badFile(path, `${size} bytes: WAV files over ${MAX_WAV_FILE_BYTES} bytes (MAX_WAV_FILE_BYTES) are not read`, { bytes: size });
}

export interface EncodeOptions {
  /** 'pcm' (default) or 'float'. */
  encoding?: 'pcm' | 'float';
  /** PCM: 8, 16 (default), 24 or 32; float: 32 (default) or 64. */
  bitsPerSample?: number;
  /** Write a WAVE_FORMAT_EXTENSIBLE fmt chunk (40 bytes) instead of the plain 16-byte one. */
  extensible?: boolean;
}

/**
 * Encodes one or more channels (equal lengths) as a WAV file. Integer encodings round to the
 * nearest step and clip to the representable range; float encodings store values as given.
 */
export function encodeWav(channelData: Float32Array | Float32Array[], sampleRate: number, options: EncodeOptions = {}): Buffer {
  const chans = Array.isArray(channelData) ? channelData : [channelData];
  const encoding = options.encoding ?? 'pcm';
  const bits = options.bitsPerSample ?? (encoding === 'float' ? 32 : 16);
  if (chans.length === 0 || chans.length > 65535) throw badInput(`encodeWav: needs 1 to 65535 channels, got ${chans.length}`);
  const frames = chans[0].length;
  if (chans.some((c) => c.length !== frames)) throw badInput('encodeWav: all channels must have the same length');
  if (!Number.isInteger(sampleRate) || sampleRate <= 0) throw badInput(`encodeWav: sample rate must be a positive integer, got ${sampleRate}`);
  const okBits = encoding === 'float' ? [32, 64] : [8, 16, 24, 32];
  if (!okBits.includes(bits)) throw badInput(`encodeWav: ${encoding} needs bitsPerSample in ${okBits.join(', ')}, got ${bits}`);

  const bytesPerSample = bits / 8;
  const blockAlign = chans.length * bytesPerSample;
  const dataSize = frames * blockAlign;
  const fmtSize = options.extensible ? 40 : 16;
  const pad = dataSize & 1;
  const total = 12 + 8 + fmtSize + 8 + dataSize + pad;
  const buf = Buffer.alloc(total);
  const view = new DataView(buf.buffer, buf.byteOffset, buf.byteLength);
  const code = encoding === 'float' ? FORMAT_FLOAT : FORMAT_PCM;
  buf.write('RIFF', 0, 'latin1');
  view.setUint32(4, total - 8, true);
  buf.write('WAVE', 8, 'latin1');
  buf.write('fmt ', 12, 'latin1');
  view.setUint32(16, fmtSize, true);
  view.setUint16(20, options.extensible ? FORMAT_EXTENSIBLE : code, true);
  view.setUint16(22, chans.length, true);
  view.setUint32(24, sampleRate, true);
  view.setUint32(28, sampleRate * blockAlign, true);
  view.setUint16(32, blockAlign, true);
  view.setUint16(34, bits, true);
  if (options.extensible) {
    view.setUint16(36, 22, true); // cbSize
    view.setUint16(38, bits, true); // valid bits per sample
    view.setUint32(40, 0, true); // channel mask: unspecified
    view.setUint16(44, code, true);
    view.setUint16(46, 0, true);
    GUID_TAIL.forEach((b, i) => view.setUint8(48 + i, b));
  }
  const dataHeader = 12 + 8 + fmtSize;
  buf.write('data', dataHeader, 'latin1');
  view.setUint32(dataHeader + 4, dataSize, true);
  const write = sampleWriter(view, encoding, bits);
  let p = dataHeader + 8;
  for (let i = 0; i < frames; i++) {
    for (let c = 0; c < chans.length; c++, p += bytesPerSample) write(p, chans[c][i]);
  }
  return buf;
}

function intSample(x: number, bits: number): number {
  const scale = 2 ** (bits - 1);
  const v = Math.round((Number.isFinite(x) ? x : 0) * scale);
  return Math.max(-scale, Math.min(scale - 1, v));
}

function sampleWriter(view: DataView, encoding: 'pcm' | 'float', bits: number): (p: number, x: number) => void {
  if (encoding === 'float') return bits === 32 ? (p, x) => view.setFloat32(p, x, true) : (p, x) => view.setFloat64(p, x, true);
  switch (bits) {
    case 8:
      return (p, x) => view.setUint8(p, intSample(x, 8) + 128);
    case 16:
      return (p, x) => view.setInt16(p, intSample(x, 16), true);
    case 24:
      return (p, x) => {
        const v = intSample(x, 24);
        view.setUint8(p, v & 0xff);
        view.setUint8(p + 1, (v >> 8) & 0xff);
        view.setInt8(p + 2, v >> 16);
      };
    default:
      return (p, x) => view.setInt32(p, intSample(x, 32), true);
  }
}

/** Mono 16-bit PCM WAV of samples in [-1, 1] (rounded, clipped): what sessions store. */
export function write16(samples: Float32Array, sampleRate: number): Buffer {
  return encodeWav(samples, sampleRate, { encoding: 'pcm', bitsPerSample: 16 });
}

/**
 * What `write16` then `readWav` give back: samples rounded to the 16-bit grid (k / 32768) and
 * clipped to [-1, 32767/32768]. Use it to measure distortion as it will be heard from the file.
 */
export function quantize16(samples: Float32Array): Float32Array {
  const out = new Float32Array(samples.length);
  for (let i = 0; i < samples.length; i++) out[i] = intSample(samples[i], 16) / 32768;
  return out;
}
