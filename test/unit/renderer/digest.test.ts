/** Hex digests in session tables are cut to 12 digits (components/session/digest.ts); other values are left alone. */
import { describe, expect, it } from 'vitest';
import { shortDigest } from '../../../src-renderer/components/session/digest';

describe('shortDigest', () => {
  it('cuts SHA-256 and SHA-1 hex digests, either case', () => {
    expect(shortDigest('598ca54ce53f7c71af9b437b258361bcc8f4d363607df7d12d8126d4325a62e0')).toBe('598ca54ce53f…');
    expect(shortDigest('24AEBC7D0F3B5E1A9C8D7E6F5A4B3C2D1E0F9A8B')).toBe('24AEBC7D0F3B…');
  });
  it('leaves short hex, ids, paths, numbers and non-hex strings as they are (null)', () => {
    for (const v of ['24aebc7', '20261205-095031-attack-7783', '/work/models/model.json', 12345, null, 'g'.repeat(64), `${'a'.repeat(64)} `]) expect(shortDigest(v), String(v)).toBeNull();
  });
});
