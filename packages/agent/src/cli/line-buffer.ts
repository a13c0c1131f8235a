// Event lines of the standalone mode, written once per drain pass instead of once per event: a write per
// event was a syscall per event, the largest cost of the standalone agent under load (and so of the kernel
// benchmark's engine runs). Lines wait at most until the current pass of the drain loop returns.
export interface LineSink {
  write(chunk: string): unknown;
}

export class LineBuffer {
  #lines: string[] = [];
  #bytes = 0;
  #scheduled = false;

  constructor(
    private readonly sink: LineSink,
    private readonly maxBytes = 1 << 16,
  ) {}

  push(line: string): void {
    this.#lines.push(line);
    this.#bytes += line.length;
    if (this.#bytes >= this.maxBytes) this.flush();
    else if (!this.#scheduled) {
      this.#scheduled = true;
      setImmediate(() => this.flush());
    }
  }

  flush(): void {
    this.#scheduled = false;
    if (this.#lines.length === 0) return;
    const chunk = this.#lines.join("");
    this.#lines = [];
    this.#bytes = 0;
    this.sink.write(chunk);
  }
}
