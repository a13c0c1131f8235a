// Which trace ids can be in a cohort: a Bloom filter over cohort_traces, kept by the position entries are
// written in. Most of the traffic is undyed requests of traces in no cohort, and looking each of their ids up
// in cohort_traces cost Postgres an index probe and the projector its share of a JSON parameter per event;
// an id the filter does not hold is known absent without either. The filter only ever answers "absent"
// for an id no entry up to its position has (false positives are looked up), so what a fold reads is
// exactly what the lookup alone gave: a snapshot at a position, reconciled under the dye lock with the entries
// committed after it (apply-dye.ts).
//
// Entries are written only under the dye lock, each writer committing before the next takes it, so the
// committed positions are always a prefix: the entries a statement sees above the filter's position, up to
// the highest of them, are all there are up to that one. Entries deleted later (retention, a rebuild's
// truncate: positions are never reused) stay in the filter as false positives until it is rebuilt, which
// happens when it outgrows its size: so with a retention window, again and again at steady state.
//
// The rebuild reads every entry (~1.4 µs each: seconds for millions), so it runs in a transaction of its
// own beside the batches, while the outgrown filter goes on answering (more false positives, never a
// false "absent"). A later catchUp brings the new one up to date and only then swaps it in: a fold that is
// using the filter meanwhile still finds every entry up to the position it was given.
import type { Database } from "@indigo/db";
import { sql } from "drizzle-orm";
import { cohortPosition } from "./store.ts";
import { rawTransaction, type Tx, withIndexProbes } from "./write/raw-tx.ts";

const BITS_PER_ENTRY = 10; // with 7 probes: about 1 % false positives when full
const PROBES = 7;
const MIN_ENTRIES = 1 << 16;
const PAGE = 50_000;
/** 2-5 bytes an entry: 20-40 MB at most. */
export const DEFAULT_COHORT_FILTER_MAX_ENTRIES = 8 * 1024 * 1024;

export interface CohortFilterOptions {
  /** Entries beyond which the filter is given up (every id looked up); it takes 2.5-5 bytes an entry. */
  readonly maxEntries: number;
  readonly log: (line: string) => void;
  /** Where a filter that outgrew its size is built anew, in a transaction of its own. */
  readonly db: Database;
}

/** A filter read from the table (bits undefined: more entries than maxEntries), and what it covers. */
interface Built {
  readonly bits: Bits | undefined;
  readonly position: bigint;
  readonly count: number;
}

/** The bits, and how many entries they take before a false positive gets likelier than ~1 %. */
class Bits {
  readonly words: Int32Array;
  readonly mask: number;
  readonly capacity: number;
  entries = 0;

  /** Room for twice `entries` at least. */
  constructor(entries: number) {
    const bits = 2 ** Math.ceil(Math.log2(Math.max(MIN_ENTRIES, 2 * entries) * BITS_PER_ENTRY));
    this.words = new Int32Array(bits / 32);
    this.mask = bits - 1;
    this.capacity = bits / BITS_PER_ENTRY;
  }

  add(ids: readonly string[]): void {
    for (const id of ids) {
      const h1 = hash1(id);
      const h2 = hash2(id);
      for (let i = 0; i < PROBES; i++) {
        const bit = (h1 + Math.imul(i, h2)) & this.mask;
        this.words[bit >>> 5]! |= 1 << (bit & 31);
      }
    }
    this.entries += ids.length;
  }

  has(id: string): boolean {
    const h1 = hash1(id);
    const h2 = hash2(id);
    for (let i = 0; i < PROBES; i++) {
      const bit = (h1 + Math.imul(i, h2)) & this.mask;
      if ((this.words[bit >>> 5]! & (1 << (bit & 31))) === 0) return false;
    }
    return true;
  }
}

export class CohortFilter {
  #bits: Bits | undefined;
  #position = 0n;
  #disabled = false;
  #catchingUp: Promise<bigint> | undefined;
  /** A rebuild running beside the batches, and one finished, to be swapped in by the next catchUp. */
  #rebuilding: Promise<void> | undefined;
  #rebuilt: Built | undefined;

  constructor(private readonly opts: CohortFilterOptions) {}

  /** Whether `traceId` may have an entry at or below the position the last catchUp returned. */
  mightHold(traceId: string): boolean {
    return this.#bits === undefined || this.#bits.has(traceId);
  }

  /**
   * Adds the entries committed since the last call and returns the position the filter now covers: every
   * entry at or below it is held. One read at a time: a caller that finds one running shares its result.
   */
  async catchUp(tx: Tx): Promise<bigint> {
    for (let running = this.#catchingUp; running; running = this.#catchingUp) {
      try {
        return await running;
      } catch {
        // Another transaction's read failed (its transaction did): read here.
      }
    }
    if (this.#disabled) return cohortPosition(tx);
    const read = this.#read(tx).finally(() => {
      this.#catchingUp = undefined;
    });
    this.#catchingUp = read;
    return read;
  }

  /** Settles when no rebuild runs beside the batches (for a clean stop, and for tests). */
  async idle(): Promise<void> {
    await this.#rebuilding;
  }

  async #read(tx: Tx): Promise<bigint> {
    if (this.#rebuilt) await this.#swapIn(tx, this.#rebuilt);
    if (this.#disabled) return cohortPosition(tx);
    if (this.#bits === undefined) {
      // The first read: nothing to answer with meanwhile (the projector makes it at start, before batches).
      this.#install(await build(tx, this.opts.maxEntries));
      if (this.#disabled) return cohortPosition(tx);
    }
    const bits = this.#bits!;
    this.#position = await addAbove(tx, bits, this.#position);
    if (bits.entries > bits.capacity) this.#rebuildAside();
    return this.#position;
  }

  #rebuildAside(): void {
    if (this.#rebuilding || this.#rebuilt) return;
    const started = performance.now();
    this.#rebuilding = this.opts.db
      .transaction((tx) => build(tx, this.opts.maxEntries))
      .then(
        (built) => {
          this.#rebuilt = built;
          if (built.bits)
            this.opts.log(
              `cohort filter rebuilt for ${built.count} entries in ${Math.round(performance.now() - started)} ms, beside the batches`,
            );
        },
        (error: unknown) => {
          // The outgrown filter stays, correct with more false positives; the next catchUp tries again.
          this.opts.log(
            `cohort filter rebuild failed (${error instanceof Error ? error.message : String(error)})`,
          );
        },
      )
      .finally(() => {
        this.#rebuilding = undefined;
      });
  }

  /** Brings a rebuilt filter up to the entries committed since its read, then answers with it. */
  async #swapIn(tx: Tx, built: Built): Promise<void> {
    this.#rebuilt = undefined;
    if (built.bits) {
      const position = await addAbove(tx, built.bits, built.position);
      this.#bits = built.bits;
      this.#position = position;
    } else this.#install(built);
  }

  #install(built: Built): void {
    if (built.bits) {
      this.#bits = built.bits;
      this.#position = built.position;
      return;
    }
    this.#disabled = true;
    this.#bits = undefined;
    this.opts.log(
      `cohort filter given up: cohort_traces holds ${built.count} entries, more than INDIGO_PROJECTOR_COHORT_FILTER_MAX_ENTRIES (${this.opts.maxEntries}); every trace id is looked up`,
    );
  }
}

/** Adds the entries above `position` to `bits`; returns the highest position added (or `position`). */
async function addAbove(tx: Tx, bits: Bits, position: bigint): Promise<bigint> {
  for (;;) {
    const page = await entriesAbove(tx, position);
    bits.add(page.ids);
    position = page.position;
    if (page.ids.length < PAGE) return position;
  }
}

/** A filter of every entry the table holds now, sized for them; none past `maxEntries`. */
async function build(tx: Tx, maxEntries: number): Promise<Built> {
  const count = await entryCount(tx);
  if (count > maxEntries) return { bits: undefined, position: 0n, count };
  const bits = new Bits(count);
  return { bits, position: await addAbove(tx, bits, 0n), count };
}

/** 32-bit FNV-1a of the string's UTF-16 code units. */
function hash1(s: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < s.length; i++) h = Math.imul(h ^ s.charCodeAt(i), 0x01000193);
  return h >>> 0;
}

/** Another 32-bit hash (multiply, xorshift), odd: the probes of one id then step through distinct bits. */
function hash2(s: string): number {
  let h = 0x9e3779b9;
  for (let i = 0; i < s.length; i++) {
    h = Math.imul(h ^ s.charCodeAt(i), 0x5bd1e995);
    h ^= h >>> 15;
  }
  return (h | 1) >>> 0;
}

async function entryCount(tx: Tx): Promise<number> {
  const [row] = await tx.execute<{ n: string }>(sql`select count(*)::text as n from cohort_traces`);
  return Number(row?.n ?? 0);
}

/**
 * Up to PAGE entries above `position`, in position order: their trace ids and the highest position among
 * them (`position` itself when there are none). Through the position index whatever the statistics say (see
 * cohortEnteredSince); one row whatever the count, the ids as one JSON array.
 */
async function entriesAbove(tx: Tx, position: bigint): Promise<{ ids: string[]; position: bigint }> {
  const raw = rawTransaction(tx);
  const [row] = await withIndexProbes(raw, () =>
    raw<{ ids: string | null; position: string | null }[]>`
      select json_agg(trace_id order by position)::text as ids, max(position)::text as position
      from (select trace_id, position from cohort_traces where position > ${String(position)}::bigint
            order by position limit ${PAGE}) e`.execute(),
  );
  if (!row?.ids || row.position === null) return { ids: [], position };
  return { ids: JSON.parse(row.ids) as string[], position: BigInt(row.position) };
}
