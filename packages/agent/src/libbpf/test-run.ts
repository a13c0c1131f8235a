// BPF_PROG_TEST_RUN through libbpf's bpf_prog_test_run_opts: runs a loaded program (tc/sched_cls, xdp, ...)
// once or `repeat` times on bytes given here, in the kernel, without a packet on any interface. Kept apart
// from ffi.ts because only tests and the parser harness use it.
import koffi from "koffi";
import { checkInt } from "./errors.ts";
import type { BpfProgram } from "./program.ts";

const lib = koffi.load("libbpf.so.1");

// struct bpf_test_run_opts (libbpf 1.1, 80 bytes on 64-bit).
const TestRunOpts = koffi.struct("indigo_bpf_test_run_opts", {
  sz: "size_t",
  data_in: "uint8_t *",
  data_out: "uint8_t *",
  data_size_in: "uint32_t",
  data_size_out: "uint32_t",
  ctx_in: "void *",
  ctx_out: "void *",
  ctx_size_in: "uint32_t",
  ctx_size_out: "uint32_t",
  retval: "uint32_t",
  repeat: "int",
  duration: "uint32_t",
  flags: "uint32_t",
  cpu: "uint32_t",
  batch_size: "uint32_t",
});

type Opts = {
  sz: number;
  data_in: Uint8Array;
  data_out: null;
  data_size_in: number;
  data_size_out: number;
  ctx_in: null;
  ctx_out: null;
  ctx_size_in: number;
  ctx_size_out: number;
  retval: number;
  repeat: number;
  duration: number;
  flags: number;
  cpu: number;
  batch_size: number;
};

const progTestRun = lib.func(
  "int bpf_prog_test_run_opts(int prog_fd, _Inout_ indigo_bpf_test_run_opts *opts)",
) as (fd: number, opts: Opts) => number;

export interface TestRunResult {
  /** the program's return value */
  retval: number;
  /** mean run time in ns per repetition, as the kernel measured it */
  durationNs: number;
}

/** Runs `prog` on `data` (for tc: the packet, from its Ethernet header). */
export const testRun = (prog: BpfProgram, data: Uint8Array, repeat = 1): TestRunResult => {
  const opts: Opts = {
    sz: koffi.sizeof(TestRunOpts),
    data_in: data,
    data_out: null,
    data_size_in: data.length,
    data_size_out: 0,
    ctx_in: null,
    ctx_out: null,
    ctx_size_in: 0,
    ctx_size_out: 0,
    retval: 0,
    repeat,
    duration: 0,
    flags: 0,
    cpu: 0,
    batch_size: 0,
  };
  checkInt("test-run", `program ${prog.name}`, () => progTestRun(prog.fd, opts));
  return { retval: opts.retval, durationNs: opts.duration };
};
