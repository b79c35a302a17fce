/**
 * A defect test/fuzz found in sessions.import (issue 14): a filename of '.' or '..' (or one that
 * sanitises to dots only) named the temp folder or its parent, and writing the archive there failed
 * with EISDIR as an INTERNAL error; a 300-character one (the schema allows it) failed with
 * ENAMETOOLONG. Any filename now imports (the name is only a label).
 */
import { mkdtempSync, rmSync } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { zipSync } from 'fflate';
import { afterAll, describe, expect, it } from 'vitest';
import { SessionStore } from '../../../src-main/engine/sessions';
import { importArchiveBytes } from '../../../src-main/report/api';
import { fakeManifest } from '../sessions/helpers';

const root = mkdtempSync(path.join(os.tmpdir(), 'advlab-import-name-'));
afterAll(() => rmSync(root, { recursive: true, force: true }));

describe('sessions.import filenames', () => {
  it("'.', '..', '', dot-only and 300-character names import like any other", async () => {
    const store = new SessionStore(root);
    const id = '20260101-000000-train-0001';
    const zip = Buffer.from(zipSync({ [`${id}/manifest.json`]: Buffer.from(JSON.stringify(fakeManifest(id))) }));
    for (const filename of ['.', '..', '', '...', '/', '../..', 'x/..', 'scratch.zip'.repeat(27), '.'.repeat(300)]) {
      const r = await importArchiveBytes(store, zip, filename);
      expect(r.originalId, filename).toBe(id);
      rmSync(store.dir(r.id), { recursive: true });
    }
  });
});
