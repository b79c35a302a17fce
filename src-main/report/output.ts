/** Writing a report or CSV to a file the user named (CLI): atomically, with a clear error for a bad folder. */
import { promises as fsp } from 'node:fs';
import * as path from 'node:path';
import { AdvlabError } from '../engine/errors';
import { writeFileAtomic } from '../engine/core/fs-atomic';

export async function writeOutputFile(file: string, data: string | Uint8Array): Promise<{ file: string; bytes: number }> {
  const target = path.resolve(file);
  const dir = path.dirname(target);
  const st = await fsp.stat(dir).catch(() => null);
  if (!st?.isDirectory()) throw new AdvlabError('NOT_FOUND', `Cannot write ${target}: folder ${dir} does not exist`, { file: target });
  const t = await fsp.stat(target).catch(() => null);
  if (t?.isDirectory()) throw new AdvlabError('BAD_INPUT', `Cannot write ${target}: it is a folder; give a file name`, { file: target });
  await writeFileAtomic(target, data);
  return { file: target, bytes: typeof data === 'string' ? Buffer.byteLength(data) : data.byteLength };
}
