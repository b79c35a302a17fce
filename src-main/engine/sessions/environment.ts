/** The `environment` block of a manifest: what a result depends on besides its parameters. */
import * as os from 'node:os';
import type { SessionEnvironment } from './schema';

/**
 * Fills node, platform, cpus and hostname from this process. The backend and versions come from the
 * caller (the engine's BackendInfo and the app's package version) so this module stays free of tfjs.
 */
export function collectEnvironment(info: { backend: string; tfjsVersion: string; advlabVersion: string }): SessionEnvironment {
  return {
    backend: info.backend,
    tfjsVersion: info.tfjsVersion,
    advlabVersion: info.advlabVersion,
    node: process.version,
    platform: `${process.platform}-${process.arch}`,
    cpus: os.cpus().length,
    hostname: os.hostname(),
  };
}
