// The only codec of struct dye_config (bpf/dye_rules.h, 176 bytes, little-endian), the engine's one-entry
// configuration map. Defaults are what the agent writes when nothing else is asked for.

export const DYE_CONFIG_SIZE = 176;
const TRACE_HEADERS_MAX = 4;
const HEADER_NAME_MAX = 32;

export const CfgFlag = { SET_SOCK_MARK: 1, SET_SKB_MARK: 2, WRITE_OPTION: 4, REPORT_UNDYED: 8 } as const;

export interface DyeConfig {
  markBase: number;
  markMask: number;
  setSockMark: boolean;
  setSkbMark: boolean;
  writeOption: boolean;
  /**
   * Also report undyed events nobody consumes (ingress, responses, requests without a trace id); off, they
   * are only counted (`undyed_skipped`). On by default for people and tests (standalone mode shows
   * everything); the daemon turns it off unless `--report-undyed`.
   */
  reportUndyed: boolean;
  activeRuleSet: 0 | 1;
  inheritWindowNs: bigint;
  scanMaxBytes: number;
  /** RFC 6994 ExID of the kind-253 option. */
  optionExid: number;
  /** lower case, at most 4, each < 32 bytes */
  traceHeaders: string[];
}

/**
 * 0x1D60 (reads "ID-GO"): an unregistered ExID chosen for Indigo. Not checked against the IANA TCP ExID
 * registry from this machine (no network); a deployment that collides with another experiment sets its own.
 */
export const DEFAULT_OPTION_EXID = 0x1d60;

export const defaultDyeConfig = (): DyeConfig => ({
  markBase: 0x0100_0000,
  markMask: 0x0000_ffff,
  setSockMark: true,
  setSkbMark: true,
  writeOption: true,
  reportUndyed: true,
  activeRuleSet: 0,
  inheritWindowNs: 2_000_000_000n,
  scanMaxBytes: 4096,
  optionExid: DEFAULT_OPTION_EXID,
  traceHeaders: ["x-trace-id", "traceparent"],
});

export const dyeConfigKey = (): Uint8Array => new Uint8Array(4);

export const encodeDyeConfig = (c: DyeConfig): Uint8Array => {
  if (c.traceHeaders.length > TRACE_HEADERS_MAX) {
    throw new Error(`at most ${TRACE_HEADERS_MAX} trace headers, got ${c.traceHeaders.length}`);
  }
  const b = new Uint8Array(DYE_CONFIG_SIZE);
  const v = new DataView(b.buffer);
  v.setUint32(0, c.markBase >>> 0, true);
  v.setUint32(4, c.markMask >>> 0, true);
  const flags =
    (c.setSockMark ? CfgFlag.SET_SOCK_MARK : 0) |
    (c.setSkbMark ? CfgFlag.SET_SKB_MARK : 0) |
    (c.writeOption ? CfgFlag.WRITE_OPTION : 0) |
    (c.reportUndyed ? CfgFlag.REPORT_UNDYED : 0);
  v.setUint32(8, flags, true);
  v.setUint32(12, c.activeRuleSet, true);
  v.setBigUint64(16, c.inheritWindowNs, true);
  v.setUint32(24, c.scanMaxBytes, true);
  v.setUint16(28, c.optionExid, true);
  v.setUint8(30, c.traceHeaders.length);
  c.traceHeaders.forEach((name, i) => {
    const bytes = new TextEncoder().encode(name.toLowerCase());
    if (bytes.length >= HEADER_NAME_MAX) throw new Error(`trace header name too long: ${name}`);
    const at = 32 + i * 36;
    b.set(bytes, at);
    v.setUint8(at + HEADER_NAME_MAX, bytes.length);
  });
  return b;
};

export const decodeDyeConfig = (b: Uint8Array): DyeConfig => {
  const v = new DataView(b.buffer, b.byteOffset, b.byteLength);
  const flags = v.getUint32(8, true);
  const count = v.getUint8(30);
  return {
    markBase: v.getUint32(0, true),
    markMask: v.getUint32(4, true),
    setSockMark: (flags & CfgFlag.SET_SOCK_MARK) !== 0,
    setSkbMark: (flags & CfgFlag.SET_SKB_MARK) !== 0,
    writeOption: (flags & CfgFlag.WRITE_OPTION) !== 0,
    reportUndyed: (flags & CfgFlag.REPORT_UNDYED) !== 0,
    activeRuleSet: (v.getUint32(12, true) & 1) as 0 | 1,
    inheritWindowNs: v.getBigUint64(16, true),
    scanMaxBytes: v.getUint32(24, true),
    optionExid: v.getUint16(28, true),
    traceHeaders: Array.from({ length: count }, (_, i) => {
      const at = 32 + i * 36;
      return new TextDecoder().decode(b.subarray(at, at + v.getUint8(at + HEADER_NAME_MAX)));
    }),
  };
};

/** The mark a dyed socket/packet gets: (base & ~mask) | (dye & mask). */
export const dyeMark = (c: Pick<DyeConfig, "markBase" | "markMask">, dye: number): number =>
  ((c.markBase & ~c.markMask) | (dye & c.markMask)) >>> 0;
