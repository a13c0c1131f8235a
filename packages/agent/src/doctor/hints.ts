// One-line hints for the verifier complaints people meet most, keyed by the kernel's own wording
// (kernel/bpf/verifier.c). First match wins; the order puts specific messages before general ones.

interface Hint {
  cause: string;
  when: RegExp;
  hint: string;
}

const HINTS: readonly Hint[] = [
  {
    cause: "missing null check",
    when: /invalid mem access '\w*_or_null'|_or_null.*(expected|invalid)|possibly NULL/,
    hint: "a pointer that may be NULL (map lookup, bpf_sk_storage_get, ringbuf reserve) is used before an `if (!p) return ...;` check",
  },
  {
    cause: "scalar used as a pointer",
    when: /invalid mem access 'scalar'|invalid mem access 'inv'/,
    hint: "a plain number is dereferenced: read foreign memory with bpf_probe_read_kernel/user or through a typed BTF pointer",
  },
  {
    cause: "unbounded loop",
    when: /back-edge|infinite loop detected|loop is not bounded|unbounded loop/,
    hint: "the verifier cannot bound this loop: give it a constant trip count (`for (i = 0; i < N; i++)`), use bpf_loop(), or unroll it",
  },
  {
    cause: "too many instructions",
    when: /program is too large|BPF program is too large|complexity limit|too many states|jump sequence of \d+ is too complex/,
    hint: "verification hit the 1M-instruction / state limit: shrink loop bounds, split work with bpf_loop() or tail calls, or move it to user space",
  },
  {
    cause: "stack limit",
    when: /combined stack size|stack size of|invalid (write|read) to stack|stack depth|invalid stack off|too many frames|stack frames exceeded/,
    hint: "the BPF stack is 512 bytes (all frames together): keep large buffers in a per-CPU array map",
  },
  {
    cause: "helper not allowed in this program type",
    when: /program of this type cannot use helper|helper call is not allowed|cannot call .* from|not allowed in (this )?prog/,
    hint: "this helper is not available to this program type or attach point: use a hook that allows it (bpftool feature probe lists them)",
  },
  {
    cause: "unknown func",
    when: /unknown func|invalid func|calling kernel function .* is not allowed|kernel function .* not found/,
    hint: "the kernel does not know this helper/kfunc: it is newer than the kernel (check with bpftool feature probe) or needs a CO-RE guard",
  },
  {
    cause: "invalid mem access",
    when: /invalid access to (map value|packet|memory)|outside of the allowed memory range|min value is negative|unbounded memory access|invalid (read|write|indirect read|indirect access)|out of bounds|value is outside|invalid mem access|invalid zero-sized read|access beyond/,
    hint: "the access may fall outside the object: bound the offset/length with a check the verifier can follow (`if (off >= N) return`, `off &= N - 1`) right before it",
  },
  {
    cause: "uninitialised register",
    when: /!read_ok/,
    hint: "a register is read before anything was written to it (an uninitialised variable or a missing helper argument)",
  },
  {
    cause: "context access",
    when: /invalid bpf_context access|invalid access to context/,
    hint: "this context field is not readable/writable at this offset or size in this program type",
  },
  {
    cause: "return value",
    when: /At program exit the register R0|R0 leaks addr|should have been in/,
    hint: "the program returns a value this program type does not allow (sockops/cgroup programs return 0 or 1)",
  },
  {
    cause: "unreleased reference",
    when: /Unreleased reference|reference has not been released|release kernel function/,
    hint: "a reference (socket lookup, ringbuf reserve, kptr) is not released/submitted on every path",
  },
  {
    cause: "pointer arithmetic",
    when: /pointer arithmetic|dereference of modified|math between .* pointer/,
    hint: "arithmetic on this pointer type is not allowed: keep the original pointer and index with a bounded scalar",
  },
];

/** The common cause a verifier message points to, and what usually fixes it. */
export const hintFor = (messageLines: readonly string[]): { cause: string; hint: string } => {
  const text = messageLines.join("\n");
  for (const h of HINTS) if (h.when.test(text)) return { cause: h.cause, hint: h.hint };
  return {
    cause: "other",
    hint: "read the message against the source line; the register state shows what the verifier knew there",
  };
};
