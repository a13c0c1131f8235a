// One spool record: a 12-byte header — u32 LE payload length, u32 LE CRC-32 of the payload, u32 LE number of
// events in it — then the payload (one encoded DyeEventBatch). decodeRecords stops at the first damaged one.
export const RECORD_HEADER = 12;

export interface SpoolRecord {
  readonly bytes: Uint8Array;
  readonly events: number;
}

export const crc32 = (b: Uint8Array): number => Bun.hash.crc32(b) >>> 0;

export const encodeRecord = (r: SpoolRecord): Uint8Array => {
  const out = new Uint8Array(RECORD_HEADER + r.bytes.length);
  const v = new DataView(out.buffer);
  v.setUint32(0, r.bytes.length, true);
  v.setUint32(4, crc32(r.bytes), true);
  v.setUint32(8, r.events, true);
  out.set(r.bytes, RECORD_HEADER);
  return out;
};

/** The good records of a segment's bytes and where they end; `bad` when a record after them is damaged. */
export const decodeRecords = (b: Uint8Array): { records: SpoolRecord[]; goodBytes: number; bad: boolean } => {
  const v = new DataView(b.buffer, b.byteOffset, b.byteLength);
  const records: SpoolRecord[] = [];
  let at = 0;
  while (at < b.length) {
    if (b.length - at < RECORD_HEADER) return { records, goodBytes: at, bad: true };
    const len = v.getUint32(at, true);
    const crc = v.getUint32(at + 4, true);
    const events = v.getUint32(at + 8, true);
    const end = at + RECORD_HEADER + len;
    if (end > b.length) return { records, goodBytes: at, bad: true };
    const bytes = b.subarray(at + RECORD_HEADER, end);
    if (crc32(bytes) !== crc) return { records, goodBytes: at, bad: true };
    records.push({ bytes, events });
    at = end;
  }
  return { records, goodBytes: at, bad: false };
};
