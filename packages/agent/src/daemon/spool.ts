// The local spool: a bounded log of DyeEventBatch records on disk, for while Kafka is unreachable.
//
// Layout: segment files `<dir>/seg-<16 digits>.spool`, replayed in file-name order, each a run of records
// (spool-record.ts: header with length, CRC-32 and event count, then one encoded DyeEventBatch). Appends go to
// the newest ("active") segment; when it reaches
// segmentBytes it is fsynced and closed and a new one starts. Past maxBytes in total the oldest segments are
// deleted and their events counted in droppedEvents (reported in AgentStatus and /metrics), never silently.
// open() checks every record: a short or CRC-failing record (a crash mid-write, a bad disk) ends its segment
// there — the file is truncated to the last good record and the loss is counted in corruptRecords/Bytes.
// prepend() writes a segment that sorts before every other one: batches that were in flight when Kafka
// failed go back in front of what was spooled meanwhile, so the order per agent holds.
// A disk that refuses a write (full, over quota, read-only, failing) does not stop the agent: the partial
// record is cut off, the oldest segment is dropped to make room and the write tried once more, else the
// record is dropped; either way its events are counted in droppedEvents, and writeFailures, writeError and
// writeErrorAtMs say what the disk did.
// Before, ENOSPC was thrown from the batcher's timer and ended the daemon, and the partial record left behind
// cut every record written after it at the next open.
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
import { decodeRecords, encodeRecord, type SpoolRecord } from "./spool-record.ts";

export type { SpoolRecord };

const FIRST_ID = 1_000_000_000_000; // room to prepend below it
const NAME = /^seg-(\d{16})\.spool$/;

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

// Errors of a disk that cannot take the bytes, as opposed to a bug in the spool.
const DISK_ERRORS = new Set(["ENOSPC", "EDQUOT", "EIO", "EROFS", "EFBIG"]);
const diskError = (e: unknown): string | undefined => {
  const code = (e as { code?: unknown }).code;
  return typeof code === "string" && DISK_ERRORS.has(code) ? (e as Error).message : undefined;
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
  /** writes the disk refused (full, over quota, failing), whether or not room was then made */
  writeFailures = 0;
  /** the disk's last refusal, and when (Date.now()) */
  writeError: string | undefined;
  writeErrorAtMs = 0;

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
      const refused = this.#tryAppend(r);
      if (refused === undefined) continue;
      // room made at the old end, as the bound does
      if (this.#dropOldestClosed("disk refused a write") && this.#tryAppend(r) === undefined) continue;
      this.#refused(r.events, refused);
    }
    this.#bound();
  }

  /** Appends one record; the disk's error when it refused it (nothing of it left in the file). */
  #tryAppend(r: SpoolRecord): string | undefined {
    let active = this.#segments.at(-1);
    try {
      if (!active || this.#activeFd === undefined || active.bytes >= this.segmentBytes) {
        this.#roll();
        active = this.#newSegment((this.#segments.at(-1)?.id ?? FIRST_ID - 1) + 1, "append");
      }
      this.#write(active, r);
      return undefined;
    } catch (e) {
      const refused = diskError(e);
      if (refused === undefined) throw e;
      this.#diskRefused(refused);
      if (active && this.#activeFd !== undefined && this.#segments.at(-1) === active) {
        this.#cut(this.#activeFd, active);
        if (active.records === 0) {
          this.#roll();
          this.#segments.pop();
          rmSync(active.path, { force: true });
        }
      }
      return refused;
    }
  }

  /** Cuts a partly written record off the segment's file. */
  #cut(fd: number, seg: Segment): void {
    try {
      ftruncateSync(fd, seg.bytes);
    } catch (e) {
      this.#log({ spool: "could not cut a partial record", segment: seg.path, error: String(e) });
    }
  }

  #diskRefused(error: string): void {
    this.writeFailures++;
    this.writeError = error;
    this.writeErrorAtMs = Date.now();
  }

  /** A record the disk did not take: its events are dropped. */
  #refused(events: number, error: string): void {
    this.droppedEvents += events;
    this.#log({ spool: "disk refused a record", events, error });
  }

  /** Drops the oldest segment unless it is the one being written; false when there is none. */
  #dropOldestClosed(why: string): boolean {
    if (this.#segments.length < 2) return false;
    const seg = this.#segments.shift();
    if (!seg) return false;
    rmSync(seg.path, { force: true });
    this.droppedEvents += seg.events;
    this.droppedSegments++;
    this.#log({
      spool: `dropped oldest segment: ${why}`,
      segment: seg.path,
      events: seg.events,
      bytes: seg.bytes,
    });
    return true;
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
    let fd: number;
    try {
      fd = openSync(seg.path, "a");
    } catch (e) {
      const refused = diskError(e);
      if (refused === undefined) throw e;
      this.#diskRefused(refused);
      this.#refused(
        records.reduce((n, r) => n + r.events, 0),
        refused,
      );
      return;
    }
    try {
      for (const [i, r] of records.entries()) {
        try {
          this.#writeFd(fd, seg, r);
        } catch (e) {
          const refused = diskError(e);
          if (refused === undefined) throw e;
          this.#diskRefused(refused);
          this.#cut(fd, seg);
          this.#refused(
            records.slice(i).reduce((n, x) => n + x.events, 0),
            refused,
          );
          break;
        }
      }
      this.#sync(fd, seg.path);
    } finally {
      closeSync(fd);
    }
    if (seg.records === 0) {
      rmSync(seg.path, { force: true });
      return;
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
    const fd = this.#activeFd;
    this.#activeFd = undefined;
    try {
      this.#sync(fd, this.#segments.at(-1)?.path ?? this.dir);
    } finally {
      closeSync(fd);
    }
  }

  /** fsync; a disk that fails it is reported, not thrown (what it lost shows at the next open as cut records). */
  #sync(fd: number, path: string): void {
    try {
      fsyncSync(fd);
    } catch (e) {
      const refused = diskError(e);
      if (refused === undefined) throw e;
      this.#diskRefused(refused);
      this.#log({ spool: "fsync failed", segment: path, error: refused });
    }
  }

  /** Past maxBytes: drop the oldest segments (never the one being written), counting their events. */
  #bound(): void {
    while (this.bytes > this.maxBytes && this.#dropOldestClosed("past the bound")) {}
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
