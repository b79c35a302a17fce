import { resolve } from 'node:path';

/** The built job worker; `npm test` builds before the unit tests. */
export const WORKER = resolve(import.meta.dirname, '../../out/main/worker.js');
export const DATA = process.env.ADVLAB_DATA ?? resolve(import.meta.dirname, '../../../shared/data');
