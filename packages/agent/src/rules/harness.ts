// The parser harness (bpf/parse_harness.bpf.c): runs the kernel payload scanner on bytes given from here
// through BPF_PROG_TEST_RUN, and the only decoder of its struct harness_result (296 bytes).
import { type BpfMap, BpfObject } from "../libbpf/index.ts";
import { testRun } from "../libbpf/test-run.ts";

export const HARNESS_RESULT_SIZE = 296;
/** Offsets of struct harness_result (checked against the object's BTF by parsers.int.test.ts). */
export const HarnessResultLayout = {
  runs: 0,
  dye: 4,
  source: 8,
  judged: 9,
  truncated: 10,
  response: 11,
  status: 12,
  tls: 14,
  best_slot: 15,
  in_headers: 16,
  skip_line: 17,
  carry_len: 18,
  lines: 20,
  scanned: 24,
  trace_id_len: 28,
  method_len: 29,
  path_len: 30,
  sni_len: 31,
  trace_id: 32,
  method: 96,
  path: 104,
  sni: 200,
} as const;

export interface HarnessResult {
  runs: number;
  dye: number;
  /** DYE_SRC_*: 0 none, 1 payload, 2 sni */
  source: number;
  judged: boolean;
  truncated: boolean;
  response: boolean;
  status: number;
  tls: boolean;
  /** 255 = no rule */
  bestSlot: number;
  inHeaders: boolean;
  skipLine: boolean;
  carryLen: number;
  lines: number;
  scanned: number;
  traceId: string;
  method: string;
  path: string;
  sni: string;
  /** the whole trace_id[64] field, to check nothing stale is left past traceId */
  traceIdRaw: Uint8Array;
}

const text = (b: Uint8Array, at: number, len: number): string =>
  new TextDecoder().decode(b.subarray(at, at + len));

export const decodeHarnessResult = (b: Uint8Array): HarnessResult => {
  if (b.length !== HARNESS_RESULT_SIZE) throw new Error(`harness_result is ${b.length} bytes, expected 296`);
  const L = HarnessResultLayout;
  const v = new DataView(b.buffer, b.byteOffset, b.byteLength);
  return {
    runs: v.getUint32(L.runs, true),
    dye: v.getUint32(L.dye, true),
    source: v.getUint8(L.source),
    judged: v.getUint8(L.judged) !== 0,
    truncated: v.getUint8(L.truncated) !== 0,
    response: v.getUint8(L.response) !== 0,
    status: v.getUint16(L.status, true),
    tls: v.getUint8(L.tls) !== 0,
    bestSlot: v.getUint8(L.best_slot),
    inHeaders: v.getUint8(L.in_headers) !== 0,
    skipLine: v.getUint8(L.skip_line) !== 0,
    carryLen: v.getUint16(L.carry_len, true),
    lines: v.getUint32(L.lines, true),
    scanned: v.getUint32(L.scanned, true),
    traceId: text(b, L.trace_id, v.getUint8(L.trace_id_len)),
    method: text(b, L.method, v.getUint8(L.method_len)),
    path: text(b, L.path, v.getUint8(L.path_len)),
    sni: text(b, L.sni, v.getUint8(L.sni_len)),
    traceIdRaw: b.slice(L.trace_id, L.trace_id + 64),
  };
};

/** A loaded parse_harness.bpf.o: one simulated socket whose sends are test runs. */
export class ParseHarness {
  readonly obj: BpfObject;
  readonly #state: BpfMap;
  readonly #result: BpfMap;
  static readonly HEADER = 14;

  constructor(path: string) {
    this.obj = BpfObject.open(path);
    try {
      this.obj.load();
    } catch (e) {
      this.obj.close();
      throw e;
    }
    this.#state = this.obj.map("harness_state");
    this.#result = this.obj.map("harness_result");
  }

  map(name: string): BpfMap {
    return this.obj.map(name);
  }

  /** A new connection: the socket's carry and flags are zeroed. */
  reset(): void {
    this.#state.update(new Uint8Array(4), new Uint8Array(this.#state.valueSize));
  }

  /** One send of `payload` on the simulated socket; returns the scanner's outcome and the kernel's run time. */
  send(payload: Uint8Array | string, repeat = 1): HarnessResult & { durationNs: number } {
    const bytes = typeof payload === "string" ? new TextEncoder().encode(payload) : payload;
    const data = new Uint8Array(ParseHarness.HEADER + bytes.length);
    data.set(bytes, ParseHarness.HEADER);
    const before = this.#read().runs;
    const { durationNs } = testRun(this.obj.program("harness_send"), data, repeat);
    const r = this.#read();
    if (r.runs !== before + repeat)
      throw new Error(`harness ran ${r.runs - before} times, expected ${repeat}`);
    return { ...r, durationNs };
  }

  #read(): HarnessResult {
    const b = this.#result.lookup(new Uint8Array(4));
    if (!b) throw new Error("harness_result has no entry 0");
    return decodeHarnessResult(b);
  }

  close(): void {
    this.obj.close();
  }
}
