import { describe, expect, test } from "bun:test";
import { hintFor } from "./hints.ts";
import { parseRegisterState, parseVerifierFailure } from "./verifier-log.ts";

// Kernel 6.18's level-1 log of testdata/broken.bpf.c (count_unchecked), as captured by doctor.
const LOG = `func#0 @0
Live regs before insn:
      0: .1........ (61) r1 = *(u32 *)(r1 +0)
      7: 0......... (79) r1 = *(u64 *)(r0 +0)
0: R1=ctx() R10=fp0
; __u32 key = skops->op; @ broken.bpf.c:26
0: (61) r1 = *(u32 *)(r1 +0)          ; R1=scalar(smin=0,smax=umax=0xffffffff,var_off=(0x0; 0xffffffff))
1: (63) *(u32 *)(r10 -4) = r1         ; R1=scalar(smin=0,smax=umax=0xffffffff,var_off=(0x0; 0xffffffff)) R10=fp0 fp-8=mmmm????
2: (bf) r2 = r10                      ; R2=fp0 R10=fp0
;  @ broken.bpf.c:0
3: (07) r2 += -4                      ; R2=fp-4
; __u64 *n = bpf_map_lookup_elem(&hits, &key); @ broken.bpf.c:27
4: (18) r1 = 0xffff888143133a00       ; R1=map_ptr(map=hits,ks=4,vs=8)
6: (85) call bpf_map_lookup_elem#1    ; R0=map_value_or_null(id=1,map=hits,ks=4,vs=8)
; *n += 1; /* BROKEN: no NULL check */ @ broken.bpf.c:28
7: (79) r1 = *(u64 *)(r0 +0)
R0 invalid mem access 'map_value_or_null'
verification time 119 usec
stack depth 8
processed 7 insns (limit 1000000) max_states_per_insn 0 total_states 0 peak_states 0 mark_read 0
`;

describe("parseVerifierFailure", () => {
  test("finds the failing instruction, its source line, the message and the registers before it", () => {
    const f = parseVerifierFailure(LOG);
    expect(f.insn).toBe(7);
    expect(f.insnText).toBe("r1 = *(u64 *)(r0 +0)");
    expect(f.source).toEqual({
      file: "broken.bpf.c",
      line: 28,
      text: "*n += 1; /* BROKEN: no NULL check */",
    });
    expect(f.message).toBe("R0 invalid mem access 'map_value_or_null'");
    expect(f.registers).toEqual({
      R0: "map_value_or_null(id=1,map=hits,ks=4,vs=8)",
      R1: "map_ptr(map=hits,ks=4,vs=8)",
      R2: "fp-4",
      R10: "fp0",
      "fp-8": "mmmm????",
    });
    expect(f.stats).toEqual({
      processed: 7,
      limit: 1000000,
      totalStates: 0,
      peakStates: 0,
      verificationUs: 119,
      stackDepth: "8",
    });
  });

  test("a CFG error before the walk names its instruction in the message", () => {
    const f = parseVerifierFailure("back-edge from insn 12 to 9\nprocessed 0 insns (limit 1000000)\n");
    expect(f.insn).toBe(12);
    expect(f.message).toBe("back-edge from insn 12 to 9");
    expect(f.registers).toEqual({});
    expect(hintFor(f.messageLines).cause).toBe("unbounded loop");
  });

  test("a branch's full state replaces the registers", () => {
    const f = parseVerifierFailure(
      "0: R1=ctx() R10=fp0\n5: (b7) r3 = 1 ; R3=1\nfrom 2 to 8: R0=scalar() R10=fp0\n8: (61) r2 = *(u32 *)(r0 +0)\nR0 invalid mem access 'scalar'\n",
    );
    expect(f.registers).toEqual({ R0: "scalar()", R10: "fp0" });
    expect(hintFor(f.messageLines).cause).toBe("scalar used as a pointer");
  });
});

test("parseRegisterState keeps spaces inside parentheses and drops the _w suffix", () => {
  expect(parseRegisterState("R0_w=scalar(var_off=(0x0; 0xff)) R10=fp0")).toEqual({
    R0: "scalar(var_off=(0x0; 0xff))",
    R10: "fp0",
  });
});

test.each([
  ["invalid access to map value, value_size=8 off=8 size=8", "invalid mem access"],
  ["BPF program is too large. Processed 1000001 insn", "too many instructions"],
  ["combined stack size of 2 calls is 544. Too large", "stack limit"],
  [
    "program of this type cannot use helper bpf_probe_write_user#36",
    "helper not allowed in this program type",
  ],
  ["unknown func bpf_foo#999", "unknown func"],
  ["R2 !read_ok", "uninitialised register"],
  ["something new", "other"],
])("hint for %p", (message, cause) => {
  expect(hintFor([message]).cause).toBe(cause);
});
