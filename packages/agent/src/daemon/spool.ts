// The local spool: a bounded log of DyeEventBatch records on disk, for while Kafka is unreachable.
//
// Layout: segment files `<dir>/seg-<16 digits>.spool`, replayed in file-name order. A record is a 12-byte
// header — u32 LE payload length, u32 LE CRC-32 of the payload, u32 LE number of events in it — then the
// payload (one encoded DyeEventBatch). Appends go to the newest ("active") segment; when it reaches
// segmentBytes it is fsynced and closed and a new one starts. Past maxBytes in total the oldest segments are
// deleted and their events counted in droppedEvents (reported in AgentStatus and /metrics), never silently.
// open() checks every record: a short or CRC-failing record (a crash mid-write, a bad disk) ends its segment
// there — the file is truncated to the last good record and the loss is counted in corruptRecords/Bytes.
// prepend() writes a segment that sorts before every other one: batches that were in flight when Kafka
// failed go back in front of what was spooled meanwhile, so the order per agent holds.
import {
  closeSync,
  existsSync,
  fsyncSync,
  ftruncateSync,
  mkdirSync,
  openSync,
  readdirSync,
  readFileSync,
  rmSync,
  statSync,
  writeSync,
} from "node:fs";
import { join } from "node:path";

export const RECORD_HEADER = 12;
const FIRST_ID = 1_000_000_000_000; // room to prepend below it
const NAME = /^seg-(\d{16})\.spool$/;

export interface SpoolRecord {
  readonly bytes: Uint8Array;
  readonly events: number;
}

interface Segment {
  readonly id: number;
  readonly path: string;
  bytes: number;
  events: number;
  records: number;
}

export interface SpoolOptions {
  /** bound on the bytes of every segment together */
  readonly maxBytes: number;
  /** an active segment is closed once it reaches this size */
  readonly segmentBytes?: number;
  readonly log?: (o: Record<string, unknown>) => void;
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

const segPath = (dir: string, id: number) => join(dir, `seg-${String(id).padStart(16, "0")}.spool`);

export class Spool {
  readonly dir: string;
  readonly maxBytes: number;
  readonly segmentBytes: number;
  readonly #log: (o: Record<string, unknown>) => void;
  readonly #segments: Segment[] = [];
  #activeFd: number | undefined;
  droppedEvents = 0;
  droppedSegments = 0;
  corruptRecords = 0;
  corruptBytes = 0;
  /** events ever written to the spool */
  spooledTotal = 0;

  private constructor(dir: string, o: SpoolOptions) {
    this.dir = dir;
    this.maxBytes = o.maxBytes;
    this.segmentBytes = Math.max(4096, Math.min(o.segmentBytes ?? 4 << 20, Math.floor(o.maxBytes / 4)));
    this.#log = o.log ?? (() => {});
  }

  /** Opens (creating) the spool in `dir` and checks every segment already there. */
  static open(dir: string, o: SpoolOptions): Spool {
    mkdirSync(dir, { recursive: true });
    const spool = new Spool(dir, o);
    const ids = readdirSync(dir)
      .map((f) => NAME.exec(f)?.[1])
      .filter((id): id is string => id !== undefined)
      .map(Number)
      .sort((a, b) => a - b);
    for (const id of ids) {
      const path = segPath(dir, id);
      const { records, goodBytes, bad } = decodeRecords(readFileSync(path));
      if (bad) {
        const size = statSync(path).size;
        spool.corruptRecords++;
        spool.corruptBytes += size - goodBytes;
        spool.#log({
          spool: "corrupt record",
          segment: path,
          at: goodBytes,
          truncatedBytes: size - goodBytes,
        });
        const fd = openSync(path, "r+");
        ftruncateSync(fd, goodBytes);
        fsyncSync(fd);
        closeSync(fd);
      }
      if (records.length === 0) {
        rmSync(path, { force: true });
        continue;
      }
      spool.#segments.push({
        id,
        path,
        bytes: goodBytes,
        events: records.reduce((n, r) => n + r.events, 0),
        records: records.length,
      });
    }
    return spool;
  }

  get empty(): boolean {
    return this.#segments.length === 0;
  }

  get bytes(): number {
    return this.#segments.reduce((n, s) => n + s.bytes, 0);
  }

  /** events waiting in the spool */
  get events(): number {
    return this.#segments.reduce((n, s) => n + s.events, 0);
  }

  get segmentCount(): number {
    return this.#segments.length;
  }

  has(id: number): boolean {
    return this.#segments.some((s) => s.id === id);
  }

  /** Appends records (in order) after everything spooled. */
  append(records: readonly SpoolRecord[]): void {
    for (const r of records) {
      let active = this.#segments.at(-1);
      if (!active || this.#activeFd === undefined || active.bytes >= this.segmentBytes) {
        this.#roll();
        active = this.#newSegment((this.#segments.at(-1)?.id ?? FIRST_ID - 1) + 1, "append");
      }
      this.#write(active, r);
    }
    this.#bound();
  }

  /** Writes records into a new segment that is replayed before every other one. */
  prepend(records: readonly SpoolRecord[]): void {
    if (records.length === 0) return;
    const first = this.#segments[0]?.id ?? FIRST_ID;
    const seg: Segment = {
      id: first - 1,
      path: segPath(this.dir, first - 1),
      bytes: 0,
      events: 0,
      records: 0,
    };
    const fd = openSync(seg.path, "a");
    try {
      for (const r of records) this.#writeFd(fd, seg, r);
      fsyncSync(fd);
    } finally {
      closeSync(fd);
    }
    this.#segments.unshift(seg);
    this.#bound();
  }

  /** The oldest segment's records (closing the active segment first when it is the only one). */
  oldest(): { id: number; records: SpoolRecord[] } | undefined {
    const seg = this.#segments[0];
    if (!seg) return undefined;
    if (this.#segments.length === 1) this.#roll();
    const { records } = decodeRecords(readFileSync(seg.path));
    return { id: seg.id, records };
  }

  /** Deletes a segment once replayed. */
  remove(id: number): void {
    const i = this.#segments.findIndex((s) => s.id === id);
    if (i < 0) return;
    const [seg] = this.#segments.splice(i, 1);
    if (i === this.#segments.length && this.#activeFd !== undefined) this.#roll();
    if (seg) rmSync(seg.path, { force: true });
  }

  /** fsyncs and closes the active segment. */
  close(): void {
    this.#roll();
  }

  #newSegment(id: number, _why: string): Segment {
    const seg: Segment = { id, path: segPath(this.dir, id), bytes: 0, events: 0, records: 0 };
    this.#activeFd = openSync(seg.path, "a");
    this.#segments.push(seg);
    return seg;
  }

  #write(seg: Segment, r: SpoolRecord): void {
    if (this.#activeFd === undefined) throw new Error("spool has no active segment");
    this.#writeFd(this.#activeFd, seg, r);
  }

  #writeFd(fd: number, seg: Segment, r: SpoolRecord): void {
    const rec = encodeRecord(r);
    let off = 0;
    while (off < rec.length) off += writeSync(fd, rec, off, rec.length - off);
    seg.bytes += rec.length;
    seg.events += r.events;
    seg.records++;
    this.spooledTotal += r.events;
  }

  #roll(): void {
    if (this.#activeFd === undefined) return;
    fsyncSync(this.#activeFd);
    closeSync(this.#activeFd);
    this.#activeFd = undefined;
  }

  /** Past maxBytes: drop the oldest segments (never the one being written), counting their events. */
  #bound(): void {
    while (this.bytes > this.maxBytes && this.#segments.length > 1) {
      const seg = this.#segments.shift();
      if (!seg) break;
      rmSync(seg.path, { force: true });
      this.droppedEvents += seg.events;
      this.droppedSegments++;
      this.#log({ spool: "dropped oldest segment", segment: seg.path, events: seg.events, bytes: seg.bytes });
    }
    if (
      this.bytes > this.maxBytes &&
      this.#segments.length === 1 &&
      existsSync(this.#segments[0]?.path ?? "")
    ) {
      // one segment alone over the bound (a single huge record): it goes too
      const seg = this.#segments[0];
      if (seg && seg.bytes > this.maxBytes) {
        this.#roll();
        this.#segments.shift();
        rmSync(seg.path, { force: true });
        this.droppedEvents += seg.events;
        this.droppedSegments++;
        this.#log({ spool: "dropped oversized segment", segment: seg.path, events: seg.events });
      }
    }
  }
}
