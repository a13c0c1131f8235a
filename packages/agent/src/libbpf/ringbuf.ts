// A BPF ring buffer drained from Bun by reading its memory in bulk, as libbpf's ring_buffer__consume does
// but without one foreign callback per record: the map is mmapped the way libbpf maps it (the consumer
// page read-write; the producer page and the data pages, mapped twice back to back so a record that wraps
// is contiguous, read-only), the committed records are found by walking their 8-byte headers (len with the
// BUSY and DISCARD bits, page offset), their bytes are copied out in one slice, and the consumer position
// is advanced with one atomic store. epoll_wait on the map fd runs on a worker thread (koffi `.async`).
//
// `onSample` gets each record's bytes as a view into that copy: it stays valid after the call (keep it).
import { LibbpfError } from "./errors.ts";
import {
  addressOf,
  closeFd,
  epollCreate1,
  epollCtl,
  epollWait,
  lastErrno,
  mmap,
  munmap,
  pageSize,
  viewMemory,
} from "./ffi.ts";
import { objectInfo } from "./link.ts";

const PROT_READ = 1;
const PROT_WRITE = 2;
const MAP_SHARED = 1;
const EPOLL_CLOEXEC = 0o2000000;
const EPOLL_CTL_ADD = 1;
const EPOLLIN = 1;
const BPF_RINGBUF_BUSY_BIT = 0x80000000;
const BPF_RINGBUF_DISCARD_BIT = 0x40000000;
const BPF_RINGBUF_HDR_SZ = 8;
const MAP_FAILED = 2n ** 64n - 1n;
/**
 * Bytes copied out per pass (a record more at most): small copies come from the allocator's reused memory,
 * where a copy of megabytes took fresh pages each time (page faults and zeroing were most of the agent's
 * CPU in the kernel), and the ring space goes back to the producers sooner.
 */
const PASS_BYTES = 64 * 1024;

const fail = (verb: string, what: string): never => {
  const errno = lastErrno();
  throw new LibbpfError(`failed to ${verb} ${what}: errno ${errno}`, errno, []);
};

const mapRegion = (len: number, prot: number, fd: number, offset: number, what: string): unknown => {
  const ptr = mmap(null, len, prot, MAP_SHARED, fd, offset);
  if (ptr === null || addressOf(ptr) === MAP_FAILED) fail("mmap", what);
  return ptr;
};

export class RingBuffer {
  readonly #onSample: (bytes: Uint8Array) => void;
  readonly #epollFd: number;
  readonly #events = new Uint8Array(12 * 16); // struct epoll_event is 12 bytes packed on x86-64
  readonly #size: number;
  readonly #consumerLen: number;
  readonly #producerLen: number;
  #consumerPtr: unknown;
  #producerPtr: unknown;
  /** consumer_pos (an unsigned long at the start of the consumer page) */
  readonly #consumerPos: BigUint64Array;
  /** producer_pos */
  readonly #producerPos: BigUint64Array;
  /** the data pages, twice */
  readonly #data: Uint8Array;
  readonly #dataWords: Int32Array;
  #polling = false;
  #stopped = false;
  #closed = false;
  /** records consumed since creation, discarded ones included */
  records = 0;

  constructor(mapFd: number, onSample: (bytes: Uint8Array) => void) {
    this.#onSample = onSample;
    const what = `ring buffer on map fd ${mapFd}`;
    const size = objectInfo(mapFd, 80, what).getUint32(16, true); // bpf_map_info.max_entries
    if (size === 0 || (size & (size - 1)) !== 0) throw new Error(`${what}: size ${size} is not a power of 2`);
    const page = pageSize();
    this.#size = size;
    this.#consumerLen = page;
    this.#producerLen = page + 2 * size;
    this.#consumerPtr = mapRegion(page, PROT_READ | PROT_WRITE, mapFd, 0, `${what} (consumer page)`);
    try {
      this.#producerPtr = mapRegion(this.#producerLen, PROT_READ, mapFd, page, `${what} (data pages)`);
    } catch (e) {
      munmap(this.#consumerPtr, page);
      throw e;
    }
    const consumer = viewMemory(this.#consumerPtr, page);
    const producer = viewMemory(this.#producerPtr, this.#producerLen);
    this.#consumerPos = new BigUint64Array(consumer, 0, 1);
    this.#producerPos = new BigUint64Array(producer, 0, 1);
    this.#data = new Uint8Array(producer, page, 2 * size);
    this.#dataWords = new Int32Array(producer, page, (2 * size) / 4);
    this.#epollFd = epollCreate1(EPOLL_CLOEXEC);
    const ev = new Uint8Array(12);
    new DataView(ev.buffer).setUint32(0, EPOLLIN, true);
    if (this.#epollFd < 0 || epollCtl(this.#epollFd, EPOLL_CTL_ADD, mapFd, ev) < 0) {
      const errno = lastErrno();
      this.#unmap();
      if (this.#epollFd >= 0) closeFd(this.#epollFd);
      throw new LibbpfError(`failed to create ${what}: epoll errno ${errno}`, errno, []);
    }
  }

  /** Drains what is there now; returns the number of records consumed (discarded ones included). */
  consume(): number {
    if (this.#closed) return 0;
    let total = 0;
    for (;;) {
      const n = this.#consumeOnce();
      if (n === 0) return total;
      total += n;
    }
  }

  /** One pass over the committed records between consumer_pos and producer_pos. */
  #consumeOnce(): number {
    const cons = Atomics.load(this.#consumerPos, 0);
    // Plain loads on the read-only pages: JSC's JIT may compile Atomics.load to a locked read-modify-write,
    // which faults on a read-only mapping. x86-64 loads are acquire loads already, and the copy below
    // depends on what the header loads returned, so it cannot read ahead of them.
    const prod = this.#producerPos[0] ?? 0n;
    const avail = Number(prod - cons);
    if (avail <= 0) return 0;
    const mask = this.#size - 1;
    const start = Number(cons & BigInt(mask));
    const words = this.#dataWords;
    // 1. the committed prefix: headers up to the first busy record
    let at = 0;
    let records = 0;
    while (at < avail && at < PASS_BYTES) {
      const len = (words[(start + at) >>> 2] ?? 0) >>> 0;
      if (len & BPF_RINGBUF_BUSY_BIT) break;
      at += ((len & ~BPF_RINGBUF_DISCARD_BIT & 0x3fffffff) + BPF_RINGBUF_HDR_SZ + 7) & ~7;
      records++;
    }
    if (records === 0) return 0;
    // 2. their bytes, copied out at once (the data pages are mapped twice: a wrapping record is contiguous)
    const copy = this.#data.slice(start, start + at);
    // 3. the ring space back to the producers before the records are handed on
    Atomics.store(this.#consumerPos, 0, cons + BigInt(at));
    this.records += records;
    const hv = new DataView(copy.buffer);
    for (let off = 0; off < at; ) {
      const len = hv.getUint32(off, true);
      const size = len & 0x3fffffff;
      if ((len & BPF_RINGBUF_DISCARD_BIT) === 0) {
        this.#onSample(copy.subarray(off + BPF_RINGBUF_HDR_SZ, off + BPF_RINGBUF_HDR_SZ + size));
      }
      off += (size + BPF_RINGBUF_HDR_SZ + 7) & ~7;
    }
    return records;
  }

  /**
   * Waits for data (at most `timeoutMs`) off the JS thread, then drains — on a timeout too: producers may
   * submit without waking the consumer (BPF_RB_NO_WAKEUP), so a timed-out wait can still find records.
   * Resolves to records consumed.
   */
  poll(timeoutMs: number): Promise<number> {
    if (this.#polling) throw new Error("ring buffer is already being polled");
    this.#polling = true;
    return new Promise((resolve, reject) => {
      epollWait.async(this.#epollFd, this.#events, 16, timeoutMs, (err, res) => {
        this.#polling = false;
        if (err) return reject(err);
        if (this.#stopped) return resolve(0);
        try {
          resolve(res >= 0 ? this.consume() : 0);
        } catch (e) {
          reject(e);
        }
      });
    });
  }

  #unmap(): void {
    munmap(this.#producerPtr, this.#producerLen);
    munmap(this.#consumerPtr, this.#consumerLen);
    this.#producerPtr = null;
    this.#consumerPtr = null;
  }

  /** Drains what is left, then unmaps the ring, once no poll is in flight. Idempotent. */
  async close(): Promise<void> {
    this.#stopped = true;
    while (this.#polling) await new Promise((r) => setTimeout(r, 5));
    if (this.#closed) return;
    try {
      this.consume();
    } finally {
      this.#closed = true;
      this.#unmap();
      closeFd(this.#epollFd);
    }
  }
}
