// A BPF ring buffer drained from Bun: epoll_wait runs on a worker thread (koffi `.async`), then
// ring_buffer__consume runs on the JS thread, calling `onSample` synchronously once per record. The bytes
// handed to `onSample` are a zero-copy view valid only during the call: copy what you keep.
import { checkInt, checkPtr } from "./errors.ts";
import { epollWait, ffi, type Ptr, registerSampleFn, unregisterCallback, viewBytes } from "./ffi.ts";

export class RingBuffer {
  #rb: Ptr | null;
  readonly #cb: unknown;
  readonly #epollFd: number;
  readonly #events = new Uint8Array(12 * 16); // struct epoll_event is 12 bytes packed on x86-64
  #polling = false;
  #stopped = false;

  constructor(mapFd: number, onSample: (bytes: Uint8Array) => void) {
    this.#cb = registerSampleFn((_ctx, data, size) => {
      onSample(viewBytes(data, Number(size)));
      return 0;
    });
    try {
      this.#rb = checkPtr("create", `ring buffer on map fd ${mapFd}`, () =>
        ffi.ringBufferNew(mapFd, this.#cb, null, null),
      );
    } catch (e) {
      unregisterCallback(this.#cb);
      throw e;
    }
    this.#epollFd = ffi.ringBufferEpollFd(this.#rb);
  }

  /** Drains what is there now; returns the number of records consumed. */
  consume(): number {
    if (!this.#rb) return 0;
    const rb = this.#rb;
    return checkInt("consume", "ring buffer", () => ffi.ringBufferConsume(rb));
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

  /** Frees the ring buffer once no poll is in flight. Idempotent. */
  async close(): Promise<void> {
    this.#stopped = true;
    while (this.#polling) await new Promise((r) => setTimeout(r, 5));
    if (!this.#rb) return;
    ffi.ringBufferFree(this.#rb);
    this.#rb = null;
    unregisterCallback(this.#cb);
  }
}
