// The kernel verifier's log, read back into what `indigo-agent doctor` reports: where verification stopped
// (instruction index and text), the source line BTF line info put before it (`; <source> @ file.c:NN`), the
// verifier's message, the register state it had at that instruction, and the statistics line.
//
// Log level 1 (kernel 6.x) looks like:
//   0: R1=ctx() R10=fp0                                  full state (also `from 6 to 9: R0=... R10=fp0`)
//   ; __u64 *n = bpf_map_lookup_elem(&hits, &key); @ broken.bpf.c:27
//   6: (85) call bpf_map_lookup_elem#1    ; R0=map_value_or_null(id=1,map=hits,ks=4,vs=8)   insn + changes
//   7: (79) r1 = *(u64 *)(r0 +0)
//   R0 invalid mem access 'map_value_or_null'           the message
//   processed 7 insns (limit 1000000) max_states_per_insn 0 total_states 0 peak_states 0 mark_read 0
// The register state at the failure is the last full state with every later instruction's changes applied.

export interface SourceLine {
  file?: string;
  line?: number;
  text: string;
}

export interface VerifierStats {
  processed?: number;
  limit?: number;
  totalStates?: number;
  peakStates?: number;
  verificationUs?: number;
  stackDepth?: string;
}

export interface VerifierFailure {
  /** index of the instruction verification stopped at (eBPF instructions, 8 bytes each) */
  insn?: number;
  /** that instruction as the verifier printed it, e.g. `r1 = *(u64 *)(r0 +0)` */
  insnText?: string;
  source?: SourceLine;
  /** the first line of the verifier's complaint */
  message: string;
  /** every line of the complaint (some errors take two, e.g. an access and the range it broke) */
  messageLines: string[];
  /** register (and stack slot) state before the failing instruction: { R0: "map_value_or_null(...)", ... } */
  registers: Record<string, string>;
  stats: VerifierStats;
}

const SOURCE = /^; ?(.*?)(?: @ (\S+):(\d+))?$/;
const INSN = /^(\d+): \(([0-9a-f]{2})\) (.*?)(?:\s+; (.*))?$/;
const STATE = /^(\d+): (R\d+|fp-?\d+)/;
const FROM = /^from \d+ to (\d+): (.*)$/;
const LIVE_REGS = /^\s+\d+: [.\d]+ \(/;
const NOISE =
  /^(mark_precise:|Live regs before insn:|func#\d+ @|\(\d+\) frame|\(\d+\) live stack|last_idx|parent (didn't|already)|regs=|propagating|.*: safe$|\d+: safe)/;
const STATS = /^processed (\d+) insns \(limit (\d+)\)(?:.*total_states (\d+))?(?:.*peak_states (\d+))?/;
const TIME = /^verification time (\d+) usec/;
const STACK = /^stack depth (.*)$/;

/**
 * Splits `R1=ctx() R10=fp0 fp-8=mmmm????` into name → value, keeping spaces inside parentheses
 * (`var_off=(0x0; 0xffffffff)`). `R0_w` (written in this instruction) is reported as `R0`.
 */
export const parseRegisterState = (text: string): Record<string, string> => {
  const out: Record<string, string> = {};
  let depth = 0;
  let token = "";
  const flush = () => {
    const eq = token.indexOf("=");
    if (eq > 0) out[token.slice(0, eq).replace(/_[rwD]+$/, "")] = token.slice(eq + 1);
    token = "";
  };
  for (const ch of text.trim()) {
    if (ch === "(") depth++;
    if (ch === ")") depth = Math.max(0, depth - 1);
    if (ch === " " && depth === 0) flush();
    else token += ch;
  }
  flush();
  return out;
};

export const parseStats = (log: string): VerifierStats => {
  const stats: VerifierStats = {};
  for (const line of log.split("\n")) {
    const s = STATS.exec(line);
    if (s) {
      stats.processed = Number(s[1]);
      stats.limit = Number(s[2]);
      if (s[3] !== undefined) stats.totalStates = Number(s[3]);
      if (s[4] !== undefined) stats.peakStates = Number(s[4]);
    }
    const t = TIME.exec(line);
    if (t) stats.verificationUs = Number(t[1]);
    const d = STACK.exec(line);
    if (d) stats.stackDepth = d[1];
  }
  return stats;
};

/** R0..R10 in number order, then stack slots from fp-8 downwards. */
const sortRegisters = (regs: Record<string, string>): Record<string, string> => {
  const rank = (k: string): number =>
    k.startsWith("R") ? Number(k.slice(1)) : k.startsWith("fp") ? 100 - Number(k.slice(2)) : 10_000;
  return Object.fromEntries(Object.entries(regs).sort(([a], [b]) => rank(a) - rank(b)));
};

const isTail = (line: string): boolean =>
  STATS.test(line) || TIME.test(line) || STACK.test(line) || line.startsWith("-- END PROG LOAD LOG");

/** Reads a failed verification's log (level ≥ 1 for instructions and source lines). */
export const parseVerifierFailure = (log: string): VerifierFailure => {
  let source: SourceLine | undefined;
  let insn: number | undefined;
  let insnText: string | undefined;
  let insnSource: SourceLine | undefined;
  let regs: Record<string, string> = {};
  let complaint: string[] = [];

  for (const raw of log.split("\n")) {
    const line = raw.replace(/\s+$/, "");
    if (line === "" || LIVE_REGS.test(line) || NOISE.test(line) || isTail(line)) continue;
    if (line.startsWith("libbpf:") || line.startsWith("prog '")) continue;
    const from = FROM.exec(line);
    if (from) {
      regs = parseRegisterState(from[2] ?? "");
      complaint = [];
      continue;
    }
    const ins = INSN.exec(line);
    if (ins) {
      insn = Number(ins[1]);
      insnText = ins[3];
      insnSource = source;
      if (ins[4]) Object.assign(regs, parseRegisterState(ins[4]));
      complaint = [];
      continue;
    }
    if (STATE.test(line)) {
      regs = parseRegisterState(line.slice(line.indexOf(":") + 1));
      complaint = [];
      continue;
    }
    if (line.startsWith(";")) {
      const src = SOURCE.exec(line);
      if (src) {
        const lineNo = src[3] === undefined ? undefined : Number(src[3]);
        // `;  @ file.c:0` marks compiler-made code: the previous real line still applies.
        if (lineNo !== 0) source = { file: src[2], line: lineNo, text: (src[1] ?? "").trim() };
      }
      continue;
    }
    complaint.push(line);
  }

  // Errors found before the walk (CFG checks) name their instruction in the message.
  const messageLines = complaint.length > 0 ? complaint : ["(the verifier log has no message)"];
  const message = messageLines[0] as string;
  const named = /(?:back-edge from|insn|jump out of range from insn) (\d+)/.exec(message);
  if (insn === undefined && named) insn = Number(named[1]);
  return {
    insn,
    insnText,
    source: insnSource,
    message,
    messageLines,
    registers: insnText === undefined ? {} : sortRegisters(regs),
    stats: parseStats(log),
  };
};
