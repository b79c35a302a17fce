/**
 * Room impulse responses by the image-source method (Allen & Berkley 1979, "Image method for
 * efficiently simulating small-room acoustics", J. Acoust. Soc. Am. 65(4)).
 *
 * A shoebox room [0, Lx] x [0, Ly] x [0, Lz] with rigid-wall reflection coefficients
 * beta = sqrt(1 - alpha) (alpha: the wall's energy absorption) is replaced by free space filled with
 * mirror images of the source. For p = (q, j, k) in {0, 1}^3 and r = (n, l, m) in Z^3 the image sits at
 *
 *   R_{p,r} = ((1 - 2q) x_s + 2 n Lx,  (1 - 2j) y_s + 2 l Ly,  (1 - 2k) z_s + 2 m Lz),
 *
 * has travelled d = |R_{p,r} - mic| and met the walls x = 0 |n - q| times and x = Lx |n| times (and so
 * on for y and z), so the response is
 *
 *   h(t) = sum_{p,r} beta_x0^|n-q| beta_x1^|n| beta_y0^|l-j| beta_y1^|l| beta_z0^|m-k| beta_z1^|m|
 *                    * delta(t - d / c) / (4 pi d).
 *
 * Only images with d / c below the response's length are kept (the sum is then finite). Where the paper
 * rounds each delay to the nearest sample (and high-passes the result), each image is placed here at its
 * exact fractional delay with a Hann-windowed sinc of `sincHalfWidth` taps on each side (Peterson 1986,
 * "Simulating the response of multiple microphones to a single acoustic source in a reverberant room"),
 * which keeps sub-sample geometry. The default length is the room's Sabine reverberation time
 * T60 = 0.161 V / sum(S_i alpha_i), capped at `maxSeconds`.
 */
import { badInput } from '../errors';
import { mulberry32 } from '../core/random';

/** Speed of sound in air at about 20 °C, m/s. */
export const SPEED_OF_SOUND = 343;

export type Vec3 = readonly [number, number, number];

export interface ShoeboxRoom {
  /** Room dimensions Lx, Ly, Lz in metres. */
  size: Vec3;
  /** Source position in metres, inside the room. */
  source: Vec3;
  /** Microphone position in metres, inside the room. */
  mic: Vec3;
  /**
   * Energy absorption coefficient alpha in [0, 1) of each wall, in the order x = 0, x = Lx, y = 0,
   * y = Ly, z = 0, z = Lz; or one number for all six.
   */
  absorption: number | readonly number[];
}

export interface RirOptions {
  sampleRate: number;
  /** Length of the response in seconds; default the room's Sabine T60, capped at maxSeconds. */
  seconds?: number;
  /** Cap of the default length. Default 0.25 s. */
  maxSeconds?: number;
  /** Taps on each side of each image's windowed sinc. Default 16. */
  sincHalfWidth?: number;
  /** Speed of sound, m/s. Default 343. */
  c?: number;
}

function wallAbsorption(room: ShoeboxRoom): number[] {
  const a = typeof room.absorption === 'number' ? Array(6).fill(room.absorption) : [...room.absorption];
  if (a.length !== 6 || a.some((v) => !(v >= 0 && v < 1))) throw badInput(`rir: absorption must be a number or 6 numbers in [0, 1), got ${JSON.stringify(room.absorption)}`);
  return a;
}

function checkRoom(room: ShoeboxRoom): void {
  const [Lx, Ly, Lz] = room.size;
  if (![Lx, Ly, Lz].every((v) => v > 0 && Number.isFinite(v))) throw badInput(`rir: room size must be three positive numbers, got ${JSON.stringify(room.size)}`);
  for (const [name, p] of [['source', room.source], ['mic', room.mic]] as const) {
    if (!p.every((v, i) => v > 0 && v < room.size[i])) throw badInput(`rir: the ${name} ${JSON.stringify(p)} must be strictly inside the room ${JSON.stringify(room.size)}`);
  }
}

/** Sabine's reverberation time T60 = 0.161 V / sum_i S_i alpha_i, in seconds (Infinity without absorption). */
export function sabineT60(room: ShoeboxRoom): number {
  const [Lx, Ly, Lz] = room.size;
  const a = wallAbsorption(room);
  const absorbed = Ly * Lz * (a[0] + a[1]) + Lx * Lz * (a[2] + a[3]) + Lx * Ly * (a[4] + a[5]);
  return absorbed > 0 ? (0.161 * Lx * Ly * Lz) / absorbed : Infinity;
}

/** Distance from the source to the microphone, metres. */
export function directDistance(room: ShoeboxRoom): number {
  return Math.hypot(room.source[0] - room.mic[0], room.source[1] - room.mic[1], room.source[2] - room.mic[2]);
}

/** The room's impulse response from source to microphone at `sampleRate` (see the module docstring). */
export function imageSourceRir(room: ShoeboxRoom, options: RirOptions): Float32Array {
  checkRoom(room);
  const fs = options.sampleRate;
  if (!(Number.isInteger(fs) && fs > 0)) throw badInput(`rir: sampleRate must be a positive integer, got ${fs}`);
  const c = options.c ?? SPEED_OF_SOUND;
  const W = options.sincHalfWidth ?? 16;
  const seconds = options.seconds ?? Math.min(options.maxSeconds ?? 0.25, sabineT60(room));
  if (!(seconds > 0 && Number.isFinite(seconds))) throw badInput(`rir: the response length must be a positive number of seconds, got ${seconds}`);
  const beta = wallAbsorption(room).map((a) => Math.sqrt(1 - a));
  const len = Math.max(1, Math.ceil(seconds * fs));
  const h = new Float64Array(len);
  const [Lx, Ly, Lz] = room.size;
  const [xs, ys, zs] = room.source;
  const [xm, ym, zm] = room.mic;
  const maxDist = (len + W) * c / fs;
  const N = [Math.ceil(maxDist / (2 * Lx)) + 1, Math.ceil(maxDist / (2 * Ly)) + 1, Math.ceil(maxDist / (2 * Lz)) + 1];
  for (let q = 0; q <= 1; q++) {
    for (let n = -N[0]; n <= N[0]; n++) {
      const dx = (1 - 2 * q) * xs + 2 * n * Lx - xm;
      const gx = beta[0] ** Math.abs(n - q) * beta[1] ** Math.abs(n);
      for (let j = 0; j <= 1; j++) {
        for (let l = -N[1]; l <= N[1]; l++) {
          const dy = (1 - 2 * j) * ys + 2 * l * Ly - ym;
          const gxy = gx * beta[2] ** Math.abs(l - j) * beta[3] ** Math.abs(l);
          for (let k = 0; k <= 1; k++) {
            for (let m = -N[2]; m <= N[2]; m++) {
              const dz = (1 - 2 * k) * zs + 2 * m * Lz - zm;
              const d = Math.sqrt(dx * dx + dy * dy + dz * dz);
              if (d > maxDist) continue;
              const gain = gxy * beta[4] ** Math.abs(m - k) * beta[5] ** Math.abs(m) / (4 * Math.PI * Math.max(d, 1e-3));
              const t = (d / c) * fs;
              const centre = Math.round(t);
              for (let i = Math.max(0, centre - W); i <= Math.min(len - 1, centre + W); i++) {
                const u = i - t;
                if (Math.abs(u) > W) continue;
                const sinc = u === 0 ? 1 : Math.sin(Math.PI * u) / (Math.PI * u);
                h[i] += gain * sinc * 0.5 * (1 + Math.cos((Math.PI * u) / W));
              }
            }
          }
        }
      }
    }
  }
  return Float32Array.from(h);
}

/** y = h * x (causal), cut to x's length. */
export function convolveSame(x: Float32Array, h: Float32Array): Float32Array {
  const n = x.length;
  const out = new Float32Array(n);
  for (let k = 0; k < h.length; k++) {
    const hk = h[k];
    if (hk === 0) continue;
    for (let i = k; i < n; i++) out[i] += hk * x[i - k];
  }
  return out;
}

/** Ranges random rooms are drawn from (uniformly). */
export interface RoomDistribution {
  /** [min, max] of each dimension, metres. */
  size: readonly [Vec3, Vec3];
  /** [min, max] wall absorption (one value per wall, drawn independently). */
  absorption: readonly [number, number];
  /** [min, max] source-microphone distance, metres. */
  distance: readonly [number, number];
  /** Keep source and microphone at least this far from every wall, metres. */
  wallMargin: number;
}

/** Small to medium rooms, moderately damped (Sabine T60 from about 0.1 to 0.6 s). */
export const DEFAULT_ROOMS: RoomDistribution = {
  size: [[3, 3, 2.4], [8, 7, 3.5]],
  absorption: [0.3, 0.8],
  distance: [0.5, 2.5],
  wallMargin: 0.4,
};

/**
 * A random room: dimensions and absorptions drawn uniformly, the source anywhere at least wallMargin
 * from the walls, the microphone at a uniform distance in `distance` and a uniform direction from it
 * (redrawn until inside the margins). `rng` returns uniform numbers in [0, 1).
 */
export function randomRoom(rng: () => number, dist: RoomDistribution = DEFAULT_ROOMS): ShoeboxRoom {
  const u = (a: number, b: number) => a + (b - a) * rng();
  const size = [0, 1, 2].map((i) => u(dist.size[0][i], dist.size[1][i])) as unknown as Vec3;
  const m = dist.wallMargin;
  const inside = (p: number[]) => p.every((v, i) => v >= m && v <= size[i] - m);
  const pick = () => [0, 1, 2].map((i) => u(m, size[i] - m));
  for (let attempt = 0; attempt < 1000; attempt++) {
    const source = pick();
    const d = u(dist.distance[0], dist.distance[1]);
    const zc = u(-1, 1);
    const phi = u(0, 2 * Math.PI);
    const r = Math.sqrt(1 - zc * zc);
    const mic = [source[0] + d * r * Math.cos(phi), source[1] + d * r * Math.sin(phi), source[2] + d * zc];
    if (inside(mic)) {
      const absorption = Array.from({ length: 6 }, () => u(dist.absorption[0], dist.absorption[1]));
      return { size, source: source as unknown as Vec3, mic: mic as unknown as Vec3, absorption };
    }
  }
  throw badInput(`rir: no source/microphone pair at distance ${dist.distance.join('-')} m fits room ${size.map((v) => v.toFixed(2)).join(' x ')} with ${m} m margins`);
}

/** A seeded random room's response, normalised to unit energy (sum h^2 = 1). Same seed, same response. */
export function randomRir(seed: number, options: RirOptions & { rooms?: RoomDistribution }): { room: ShoeboxRoom; rir: Float32Array } {
  const room = randomRoom(mulberry32(seed), options.rooms);
  const h = imageSourceRir(room, options);
  let e = 0;
  for (const v of h) e += v * v;
  const s = e > 0 ? 1 / Math.sqrt(e) : 1;
  return { room, rir: h.map((v) => v * s) };
}
