// Every libbpf failure becomes one LibbpfError: "failed to <verb> <what>: <errno text>", plus the
// libbpf log lines printed during the failing call (the verifier log lives there) for `doctor`.
import { ffi, lastErrno, setPrintSink } from "./ffi.ts";

export class LibbpfError extends Error {
  override readonly name = "LibbpfError";
  constructor(
    message: string,
    /** positive errno (or a libbpf LIBBPF_ERRNO__* code) */
    readonly errno: number,
    /** what libbpf printed at WARN/INFO level while the call ran */
    readonly log: readonly string[],
  ) {
    super(message);
  }
}

const LIBBPF_DEBUG = 2;
let capture: string[] | null = null;
let warn: (line: string) => void = (line) => process.stderr.write(line);

setPrintSink((level, line) => {
  if (level >= LIBBPF_DEBUG) return;
  if (capture) capture.push(line);
  else warn(line);
});

/** Where libbpf warnings printed outside a failing call go (default: stderr). */
export const setLibbpfWarningSink = (next: (line: string) => void): void => {
  warn = next;
};

/** strerror that also knows libbpf's own codes (e.g. 4007 "Kernel verifier blocks program loading"). */
export const errnoText = (errno: number): string => {
  const buf = new Uint8Array(256);
  ffi.strerror(-Math.abs(errno), buf, buf.length);
  const end = buf.indexOf(0);
  return new TextDecoder().decode(buf.subarray(0, end < 0 ? buf.length : end));
};

const fail = (verb: string, what: string, errno: number, log: readonly string[]): LibbpfError =>
  new LibbpfError(`failed to ${verb} ${what}: ${errnoText(errno)}`, errno, log);

// Runs one libbpf call with its log captured; on success the captured warnings still reach `warn`.
const captured = <T>(call: () => T): { result: T; log: string[] } => {
  const outer = capture;
  const log: string[] = [];
  capture = log;
  try {
    return { result: call(), log };
  } finally {
    capture = outer;
  }
};

const release = (log: readonly string[]): void => {
  for (const line of log) warn(line);
};

/** For calls that return 0 or a negative errno. */
export const checkInt = (verb: string, what: string, call: () => number): number => {
  const { result, log } = captured(call);
  if (result < 0) throw fail(verb, what, -result, log);
  release(log);
  return result;
};

/** For calls that return a pointer, or NULL with errno set. */
export const checkPtr = <P extends object>(verb: string, what: string, call: () => P | null): P => {
  const { result, log } = captured(call);
  if (result === null) {
    // errno must be read before anything else crosses the FFI boundary.
    const errno = lastErrno() || 2; /* ENOENT: the find_*_by_name functions may leave errno unset */
    throw fail(verb, what, errno, log);
  }
  release(log);
  return result;
};

/** A failure of this wrapper's own bookkeeping, in the same shape. */
export const usageError = (verb: string, what: string, errno: number, reason?: string): LibbpfError =>
  new LibbpfError(`failed to ${verb} ${what}: ${reason ?? errnoText(errno)}`, errno, []);
