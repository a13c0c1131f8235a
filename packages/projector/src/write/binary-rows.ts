// Rows in COPY's binary format: Postgres reads the values as they are (no text to parse per field, no
// escaping to do here), a fifth less server time than the text format for the per-event tables.
// Format: signature, flags, header extension; per row a field count then each field as length + bytes;
// a -1 field count ends the data. Integers are big-endian; a timestamptz is microseconds since 2000-01-01.

const SIGNATURE = Buffer.from("PGCOPY\n\xff\r\n\0", "latin1");
const PG_EPOCH_MS = 946_684_800_000;
const NUL = "\0";
const TWO_32 = 4_294_967_296;
const SHORT_TEXT = 128;

export class BinaryRows {
  #buf: Buffer;
  #at = 0;
  #starts = new Uint32Array(1024);
  rows = 0;

  constructor(capacity = 64 * 1024) {
    this.#buf = Buffer.allocUnsafe(Math.max(capacity, 64));
    SIGNATURE.copy(this.#buf, 0);
    this.#buf.writeInt32BE(0, 11); // flags
    this.#buf.writeInt32BE(0, 15); // header extension length
    this.#at = 19;
  }

  #room(bytes: number): void {
    if (this.#at + bytes <= this.#buf.length) return;
    const grown = Buffer.allocUnsafe(Math.max(this.#buf.length * 2, this.#at + bytes));
    this.#buf.copy(grown, 0, 0, this.#at);
    this.#buf = grown;
  }

  row(fields: number): this {
    if (this.rows === this.#starts.length) {
      const grown = new Uint32Array(this.rows * 2);
      grown.set(this.#starts);
      this.#starts = grown;
    }
    this.#starts[this.rows] = this.#at;
    this.#room(2);
    this.#buf.writeInt16BE(fields, this.#at);
    this.#at += 2;
    this.rows += 1;
    return this;
  }

  /** Postgres text cannot hold NUL: it becomes U+FFFD (deterministically, so a rebuild writes the same). */
  text(value: string): this {
    // Most values are short ASCII (trace ids, names, addresses): copied by char code, which costs a third of a
    // native UTF-8 encode call for them (measured 125 → 40 ns per string). The first byte that is not plain
    // ASCII (≥ 0x80, or NUL) sends the value down the general path from the start.
    const len = value.length;
    if (len <= SHORT_TEXT) {
      this.#room(4 + len);
      const buf = this.#buf;
      const at = this.#at + 4;
      let i = 0;
      for (; i < len; i++) {
        const c = value.charCodeAt(i);
        if (c >= 0x80 || c === 0) break;
        buf[at + i] = c;
      }
      if (i === len) {
        buf.writeInt32BE(len, this.#at);
        this.#at = at + len;
        return this;
      }
    }
    const v = value.includes(NUL) ? value.replaceAll(NUL, "\uFFFD") : value;
    this.#room(4 + v.length * 3);
    const n = this.#buf.write(v, this.#at + 4, "utf8");
    this.#buf.writeInt32BE(n, this.#at);
    this.#at += 4 + n;
    return this;
  }

  bytea(value: Uint8Array): this {
    this.#room(4 + value.length);
    this.#buf.writeInt32BE(value.length, this.#at);
    this.#buf.set(value, this.#at + 4);
    this.#at += 4 + value.length;
    return this;
  }

  /** Throws (RangeError) outside int4, as the text format's input function would refuse the value. */
  int4(value: number): this {
    this.#room(8);
    this.#buf.writeInt32BE(4, this.#at);
    this.#buf.writeInt32BE(value, this.#at + 4);
    this.#at += 8;
    return this;
  }

  /** Throws (RangeError) outside int8. */
  int8(value: bigint): this {
    this.#room(12);
    this.#buf.writeInt32BE(8, this.#at);
    this.#buf.writeBigInt64BE(value, this.#at + 4);
    this.#at += 12;
    return this;
  }

  /** From epoch milliseconds; the microseconds stay exact in a double for any date a Date can hold. */
  timestamptz(ms: number): this {
    const us = (ms - PG_EPOCH_MS) * 1000;
    const hi = Math.floor(us / TWO_32);
    this.#room(12);
    this.#buf.writeInt32BE(8, this.#at);
    this.#buf.writeInt32BE(hi, this.#at + 4);
    this.#buf.writeUInt32BE(us - hi * TWO_32, this.#at + 8);
    this.#at += 12;
    return this;
  }

  /**
   * The data with its rows in `order` (row numbers, in the order they were added: a permutation of them),
   * and its trailer. Rows are built in the order their values lie in memory and moved here as bytes: built
   * in a scattered order, each row's first touches of its values missed the cache (2.2 against 0.8 µs a row).
   */
  endInOrder(order: Uint32Array): Buffer {
    if (order.length !== this.rows)
      throw new Error(`endInOrder: ${order.length} row numbers for ${this.rows} rows`);
    if (this.rows === 0) return Buffer.alloc(0);
    const src = this.#buf;
    const starts = this.#starts;
    const out = Buffer.allocUnsafe(this.#at + 2);
    src.copy(out, 0, 0, 19);
    let at = 19;
    for (let i = 0; i < order.length; i++) {
      const row = order[i]!;
      const end = row + 1 < this.rows ? starts[row + 1]! : this.#at;
      at += src.copy(out, at, starts[row]!, end);
    }
    out.writeInt16BE(-1, at);
    return out;
  }

  /** The data with its trailer; empty when no row was added. */
  end(): Buffer {
    if (this.rows === 0) return Buffer.alloc(0);
    this.#room(2);
    this.#buf.writeInt16BE(-1, this.#at);
    this.#at += 2;
    return this.#buf.subarray(0, this.#at);
  }
}
