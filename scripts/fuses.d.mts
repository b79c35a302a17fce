/** Types for scripts/fuses.mjs (the script is plain JavaScript so that it runs without a build). */
export interface FusesModule {
  FuseVersion: { V1: string };
  FuseV1Options: Record<string, number | string>;
  FuseState: Record<string, number | string>;
  flipFuses(binary: string, config: Record<string, unknown>): Promise<number>;
  getCurrentFuseWire(binary: string): Promise<Record<string, unknown>>;
}
export type FuseSettings = Record<string, boolean>;
export function fuseSettings(options: { packaged: boolean }): FuseSettings;
export function toFuseConfig(settings: FuseSettings, fuses: FusesModule): Record<string, unknown>;
export function mismatches(wire: Record<string, unknown>, settings: FuseSettings, fuses: FusesModule): string[];
export function applyFuses(binary: string, options: { packaged?: boolean; check?: boolean } | undefined, fuses: FusesModule): Promise<FuseSettings>;
export function defaultBinary(dir?: string): string | null;
