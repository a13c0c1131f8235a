// `indigo-agent doctor`: loads a BPF object the way the engine does, with the verifier's log captured per
// program, and explains the outcome. Two passes: every program at log level 4 (statistics only: cheap, and
// what the OK report needs), then — only when a program is rejected — that program again at level 1|4, whose
// log carries each instruction, the BTF source line before it and the register changes, parsed by
// verifier-log.ts. Nothing is attached or pinned; the object is closed before returning.
import { bpfObjectPath } from "../bpf-objects.ts";
import { BpfObject, LibbpfError } from "../libbpf/index.ts";
import { hintFor } from "./hints.ts";
import { parseStats, parseVerifierFailure, type SourceLine, type VerifierStats } from "./verifier-log.ts";

const LOG_LEVEL1 = 1;
const LOG_STATS = 4;
const STATS_LOG_BYTES = 1 << 20;
/** A level-1 log past its buffer makes the kernel fail the load with ENOSPC; then once more, bigger. */
const DETAIL_LOG_BYTES = [16 << 20, 256 << 20];
const EACCES = 13;
const ENOSPC = 28;
const LIBBPF_ERRNO_VERIFY = 4007;

export interface ProgramOk {
  name: string;
  section: string;
  /** instructions the program has (what verification started from) */
  insns: number;
  /** instructions the verifier processed (walked, counting every path) */
  processed?: number;
  limit?: number;
  states?: number;
  verificationUs?: number;
  stackDepth?: string;
}

export interface Rejection {
  program: string;
  section: string;
  insn?: number;
  insnText?: string;
  source?: SourceLine;
  message: string;
  messageLines: string[];
  registers: Record<string, string>;
  cause: string;
  hint: string;
  stats: VerifierStats;
  /** the verifier log's last lines, for what the structure leaves out */
  logTail: string[];
}

export type DoctorReport =
  | { object: string; ok: true; programs: ProgramOk[] }
  | { object: string; ok: false; rejected: Rejection; programs: ProgramOk[] }
  /** the object could not be loaded for another reason than the verifier (no permission, bad ELF, ...) */
  | { object: string; ok: false; error: string; errno?: number; log: string[]; programs: ProgramOk[] };

type Capture = ReturnType<ReturnType<BpfObject["programs"]>[number]["captureVerifierLog"]>;

interface Attempt {
  programs: { name: string; section: string; insns: number; log: string }[];
  error?: LibbpfError;
}

/** Opens and loads `path` with the given log level per program (others: none); always closes it. */
const attempt = (
  path: string,
  levels: (name: string) => { level: number; bytes: number } | undefined,
): Attempt => {
  const obj = BpfObject.open(path);
  const captures: Capture[] = [];
  try {
    const progs = obj.programs();
    const logs = progs.map((p) => {
      const want = levels(p.name);
      if (!want) return undefined;
      const c = p.captureVerifierLog(want.level, want.bytes);
      captures.push(c);
      return c;
    });
    const before = progs.map((p) => p.insnCount);
    let error: LibbpfError | undefined;
    try {
      obj.load();
    } catch (e) {
      if (!(e instanceof LibbpfError)) throw e;
      error = e;
    }
    return {
      error,
      programs: progs.map((p, i) => ({
        name: p.name,
        section: p.section,
        insns: (error ? 0 : p.insnCount) || (before[i] as number),
        log: logs[i]?.text() ?? "",
      })),
    };
  } finally {
    obj.close();
    for (const c of captures) c.free();
  }
};

/** Which program libbpf says failed: `prog 'NAME': BPF program load failed: ...` (or failed to load). */
const failedProgram = (err: LibbpfError, programs: Attempt["programs"]): string | undefined => {
  for (const line of err.log) {
    const m = /prog '([^']+)': (?:BPF program load failed|failed to load)/.exec(line);
    if (m) return m[1];
  }
  // Without that line: the first program whose statistics log shows no successful end.
  return programs.find((p) => p.log !== "" && !/processed \d+ insns/.test(p.log))?.name;
};

const okOf = (p: Attempt["programs"][number]): ProgramOk => {
  const s = parseStats(p.log);
  return {
    name: p.name,
    section: p.section,
    insns: p.insns,
    processed: s.processed,
    limit: s.limit,
    states: s.totalStates,
    verificationUs: s.verificationUs,
    stackDepth: s.stackDepth,
  };
};

const isVerifierRejection = (err: LibbpfError): boolean =>
  err.errno === EACCES || err.errno === LIBBPF_ERRNO_VERIFY || err.errno === 22 /* EINVAL: e.g. bad insn */;

export const runDoctor = (objectPath = bpfObjectPath("indigo")): DoctorReport => {
  let first: Attempt;
  try {
    first = attempt(objectPath, () => ({ level: LOG_STATS, bytes: STATS_LOG_BYTES }));
  } catch (e) {
    const err = e as Error;
    return {
      object: objectPath,
      ok: false,
      error: err.message,
      errno: err instanceof LibbpfError ? err.errno : undefined,
      log: err instanceof LibbpfError ? [...err.log] : [],
      programs: [],
    };
  }
  if (!first.error) return { object: objectPath, ok: true, programs: first.programs.map(okOf) };

  const name = failedProgram(first.error, first.programs);
  if (name === undefined || !isVerifierRejection(first.error)) {
    return {
      object: objectPath,
      ok: false,
      error: first.error.message,
      errno: first.error.errno,
      log: [...first.error.log],
      programs: [],
    };
  }
  const index = first.programs.findIndex((p) => p.name === name);
  // Programs before the failing one loaded fine (libbpf loads in ELF order and stops at the first failure).
  const loaded = first.programs.slice(0, Math.max(0, index)).map(okOf);

  let detail = first.programs[index]?.log ?? "";
  for (const bytes of DETAIL_LOG_BYTES) {
    const again = attempt(objectPath, (n) =>
      n === name ? { level: LOG_LEVEL1 | LOG_STATS, bytes } : undefined,
    );
    const log = again.programs.find((p) => p.name === name)?.log ?? "";
    if (log !== "") detail = log;
    if (again.error?.errno !== ENOSPC) break;
  }
  const failure = parseVerifierFailure(detail);
  const lines = detail.split("\n").filter((l) => l.trim() !== "");
  return {
    object: objectPath,
    ok: false,
    programs: loaded,
    rejected: {
      program: name,
      section: first.programs[index]?.section ?? "",
      insn: failure.insn,
      insnText: failure.insnText,
      source: failure.source,
      message: failure.message,
      messageLines: failure.messageLines,
      registers: failure.registers,
      ...hintFor(failure.messageLines),
      stats: failure.stats,
      logTail: lines.slice(-30),
    },
  };
};

const where = (s: SourceLine | undefined): string =>
  s === undefined ? "(no BTF line info)" : `${s.file ?? "?"}:${s.line ?? "?"}`;

/** The human-readable report. */
export const formatReport = (r: DoctorReport): string => {
  const out: string[] = [`object ${r.object}`];
  for (const p of r.programs) {
    const processed = p.processed === undefined ? "" : `, ${p.processed} processed`;
    const states = p.states === undefined ? "" : `, ${p.states} states`;
    const time = p.verificationUs === undefined ? "" : `, ${p.verificationUs} µs`;
    out.push(`  ${p.name} (${p.section}): ${p.insns} insns${processed}${states}${time} — OK`);
  }
  if ("error" in r) {
    out.push(`could not load: ${r.error}`);
    out.push(...r.log.map((l) => `  | ${l.replace(/\n$/, "")}`));
  } else if (!r.ok) {
    const x = r.rejected;
    out.push(`  ${x.program} (${x.section}): REJECTED by the verifier`);
    out.push(`    instruction ${x.insn ?? "?"}${x.insnText ? `: ${x.insnText}` : ""}`);
    out.push(`    source      ${where(x.source)}${x.source?.text ? `: ${x.source.text}` : ""}`);
    out.push(`    message     ${x.messageLines.join(" / ")}`);
    const regs = Object.entries(x.registers).map(([k, v]) => `${k}=${v}`);
    out.push(`    registers   ${regs.length > 0 ? regs.join(" ") : "(none printed)"}`);
    out.push(`    cause       ${x.cause}`);
    out.push(`    hint        ${x.hint}`);
  } else {
    out.push(`all ${r.programs.length} programs verified`);
  }
  return `${out.join("\n")}\n`;
};

/** 0: every program verified; 2: the verifier rejected one; 1: the object could not be loaded otherwise. */
export const exitCodeOf = (r: DoctorReport): number => (r.ok ? 0 : "rejected" in r ? 2 : 1);
