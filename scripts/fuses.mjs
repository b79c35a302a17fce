#!/usr/bin/env node
/**
 * Flips Electron's fuses (build-time switches inside the Electron binary) per Electron's security
 * checklist, then reads them back and fails unless every one took:
 *
 *   RunAsNode                              off  (ELECTRON_RUN_AS_NODE cannot turn the app into a Node)
 *   EnableCookieEncryption                 on   (cookies encrypted at rest with the OS keychain)
 *   EnableNodeOptionsEnvironmentVariable   off  (NODE_OPTIONS is ignored)
 *   EnableNodeCliInspectArguments          off  (--inspect and friends are ignored)
 *   EnableEmbeddedAsarIntegrityValidation  on   with --packaged only (the app must be an app.asar)
 *   OnlyLoadAppFromAsar                    on   with --packaged only
 *
 * GrantFileProtocolExtraPrivileges is left as it is: the renderer is loaded from file://.
 * Without --packaged the ASAR fuses are not touched, because `npm start` runs the app from its
 * folder (no app.asar), which OnlyLoadAppFromAsar would refuse.
 *
 * Usage:  node scripts/fuses.mjs [--app <electron binary or .app>] [--packaged] [--check]
 *   --app      the binary to flip (default: node_modules/electron's binary, used by `npm start`)
 *   --packaged also turn on the ASAR fuses (run this on a packaged app's binary)
 *   --check    change nothing; exit 1 unless the binary's fuses already match
 *
 * Needs @electron/fuses (pure JavaScript, no dependencies, no install script), which is not a
 * dependency of AdvLab: `npm install --no-save @electron/fuses@2` first.
 */
import { existsSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { parseArgs } from 'node:util';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');

/** The fuse settings, by @electron/fuses' FuseV1Options names. */
export function fuseSettings({ packaged }) {
  return {
    RunAsNode: false,
    EnableCookieEncryption: true,
    EnableNodeOptionsEnvironmentVariable: false,
    EnableNodeCliInspectArguments: false,
    ...(packaged ? { EnableEmbeddedAsarIntegrityValidation: true, OnlyLoadAppFromAsar: true } : {}),
  };
}

/** The settings as @electron/fuses' config (fuse index to boolean); an unknown name is an error. */
export function toFuseConfig(settings, fuses) {
  const config = { version: fuses.FuseVersion.V1 };
  for (const [name, on] of Object.entries(settings)) {
    const index = fuses.FuseV1Options[name];
    if (typeof index !== 'number') throw new Error(`@electron/fuses does not know the fuse ${name}: update it`);
    config[index] = on;
  }
  return config;
}

/** The fuses whose state in `wire` (as read by getCurrentFuseWire) differs from `settings`. */
export function mismatches(wire, settings, fuses) {
  const wrong = [];
  for (const [name, on] of Object.entries(settings)) {
    const want = on ? fuses.FuseState.ENABLE : fuses.FuseState.DISABLE;
    const have = wire[fuses.FuseV1Options[name]];
    if (have !== want) wrong.push(`${name} is ${fuses.FuseState[have] ?? 'missing'}, expected ${on ? 'ENABLE' : 'DISABLE'}`);
  }
  return wrong;
}

/** Flips (unless `check`) and verifies; throws with every fuse that is not as it should be. */
export async function applyFuses(binary, { packaged = false, check = false } = {}, fuses) {
  const settings = fuseSettings({ packaged });
  if (!check) await fuses.flipFuses(binary, toFuseConfig(settings, fuses));
  const wrong = mismatches(await fuses.getCurrentFuseWire(binary), settings, fuses);
  if (wrong.length) throw new Error(`fuses of ${binary} are not set:\n  ${wrong.join('\n  ')}`);
  return settings;
}

/** node_modules/electron's binary, as bin/start.mjs finds it. */
export function defaultBinary(dir = root) {
  const electronDir = join(dir, 'node_modules', 'electron');
  const pathFile = join(electronDir, 'path.txt');
  if (!existsSync(pathFile)) return null;
  return join(electronDir, 'dist', readFileSync(pathFile, 'utf8').trim());
}

async function main(argv) {
  const { values } = parseArgs({ args: argv, options: { app: { type: 'string' }, packaged: { type: 'boolean', default: false }, check: { type: 'boolean', default: false } } });
  const binary = values.app ?? defaultBinary();
  if (!binary || !existsSync(binary)) {
    throw new Error(values.app ? `no Electron binary at ${values.app}` : 'Electron\'s binary is not installed (run "npm run native"), or give --app <binary>');
  }
  let fuses;
  try {
    fuses = await import('@electron/fuses');
  } catch {
    throw new Error('@electron/fuses is not installed: run "npm install --no-save @electron/fuses@2" first');
  }
  const settings = await applyFuses(binary, { packaged: values.packaged, check: values.check }, fuses);
  const list = Object.entries(settings).map(([k, v]) => `${k}=${v ? 'on' : 'off'}`).join(', ');
  console.log(`${values.check ? 'Checked' : 'Flipped'} ${binary}: ${list}`);
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  main(process.argv.slice(2)).catch((e) => {
    console.error(`fuses: ${e.message}`);
    process.exit(1);
  });
}
