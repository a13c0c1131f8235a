// pcap.ts against hand-made bytes: every link type the kernel tests meet, the Indigo option among others,
// flags, payload, truncated files.
import { describe, expect, test } from "bun:test";
import {
  INDIGO_OPT_LEN,
  indigoDye,
  LINKTYPE_EN10MB,
  LINKTYPE_LINUX_SLL,
  LINKTYPE_LINUX_SLL2,
  parsePcap,
  parseTcpOptions,
  segmentKind,
  TCP_OPT_EXP,
} from "./pcap.ts";

const EXID = 0x1d9e;

/** IPv4 + TCP with the given options (padded to 4 bytes with NOPs) and payload. */
const ipTcp = (o: {
  src?: number[];
  dst?: number[];
  sport: number;
  dport: number;
  flags: number;
  options?: number[];
  payload?: string;
}): Uint8Array => {
  const opts = [...(o.options ?? [])];
  while (opts.length % 4 !== 0) opts.push(1);
  const payload = new TextEncoder().encode(o.payload ?? "");
  const tcpLen = 20 + opts.length;
  const total = 20 + tcpLen + payload.length;
  const b = new Uint8Array(total);
  const v = new DataView(b.buffer);
  b[0] = 0x45;
  v.setUint16(2, total);
  b[8] = 64;
  b[9] = 6;
  b.set(o.src ?? [10, 1, 1, 1], 12);
  b.set(o.dst ?? [10, 1, 1, 2], 16);
  v.setUint16(20, o.sport);
  v.setUint16(22, o.dport);
  v.setUint32(24, 1000);
  v.setUint32(28, 2000);
  b[32] = (tcpLen / 4) << 4;
  b[33] = o.flags;
  v.setUint16(34, 65535);
  b.set(opts, 40);
  b.set(payload, 20 + tcpLen);
  return b;
};

const indigoOpt = (exid: number, dye: number): number[] => [
  TCP_OPT_EXP,
  INDIGO_OPT_LEN,
  exid >> 8,
  exid & 0xff,
  (dye >>> 24) & 0xff,
  (dye >>> 16) & 0xff,
  (dye >>> 8) & 0xff,
  dye & 0xff,
];

const MSS = [2, 4, 0x05, 0xb4];
const SACK_OK = [4, 2];
const TS = [8, 10, 0, 0, 0, 1, 0, 0, 0, 0];
const WSCALE = [3, 3, 7];

const eth = (ip: Uint8Array): Uint8Array => {
  const f = new Uint8Array(14 + ip.length);
  f.set([2, 0, 0, 0, 0, 1, 2, 0, 0, 0, 0, 2, 0x08, 0x00]);
  f.set(ip, 14);
  return f;
};
const sll = (ip: Uint8Array): Uint8Array => {
  const f = new Uint8Array(16 + ip.length);
  f.set([0, 4, 0, 1, 0, 6, 2, 0, 0, 0, 0, 1, 0, 0, 0x08, 0x00]);
  f.set(ip, 16);
  return f;
};
const sll2 = (ip: Uint8Array): Uint8Array => {
  const f = new Uint8Array(20 + ip.length);
  f.set([0x08, 0x00, 0, 0, 0, 0, 0, 7, 0, 1, 4, 6, 2, 0, 0, 0, 0, 1, 0, 0]);
  f.set(ip, 20);
  return f;
};

const pcap = (linktype: number, frames: Uint8Array[], opts: { le?: boolean; truncateLast?: number } = {}) => {
  const le = opts.le ?? true;
  const parts: Uint8Array[] = [];
  const hdr = new Uint8Array(24);
  const hv = new DataView(hdr.buffer);
  hv.setUint32(0, 0xa1b2c3d4, le);
  hv.setUint16(4, 2, le);
  hv.setUint16(6, 4, le);
  hv.setUint32(16, 262144, le);
  hv.setUint32(20, linktype, le);
  parts.push(hdr);
  frames.forEach((f, i) => {
    const rec = new Uint8Array(16);
    const rv = new DataView(rec.buffer);
    rv.setUint32(0, 1_700_000_000 + i, le);
    rv.setUint32(4, 250, le);
    rv.setUint32(8, f.length, le);
    rv.setUint32(12, f.length, le);
    parts.push(rec, f);
  });
  let out = Buffer.concat(parts);
  if (opts.truncateLast) out = out.subarray(0, out.length - opts.truncateLast);
  return new Uint8Array(out);
};

const handshake = (dye: number | undefined) => [
  ipTcp({
    sport: 40000,
    dport: 8081,
    flags: 0x02,
    options: [...MSS, ...SACK_OK, ...TS, ...WSCALE, ...(dye === undefined ? [] : indigoOpt(EXID, dye))],
  }),
  ipTcp({
    src: [10, 1, 1, 2],
    dst: [10, 1, 1, 1],
    sport: 8081,
    dport: 40000,
    flags: 0x12,
    options: [...MSS, ...SACK_OK, ...(dye === undefined ? [] : indigoOpt(EXID, dye))],
  }),
  ipTcp({ sport: 40000, dport: 8081, flags: 0x10, options: [1, 1, ...TS] }),
  ipTcp({
    sport: 40000,
    dport: 8081,
    flags: 0x18,
    options: [1, 1, ...TS, ...indigoOpt(EXID, 0)],
    payload: "GET /r/7 HTTP/1.1\r\n\r\n",
  }),
  ipTcp({ sport: 40000, dport: 8081, flags: 0x11 }),
];

describe("parsePcap", () => {
  for (const [name, linktype, wrap] of [
    ["EN10MB (tcpdump -i veth)", LINKTYPE_EN10MB, eth],
    ["LINUX_SLL", LINKTYPE_LINUX_SLL, sll],
    ["LINUX_SLL2 (tcpdump -i any)", LINKTYPE_LINUX_SLL2, sll2],
  ] as const) {
    test(`${name}: tuple, flags, options, Indigo dye, payload`, () => {
      const file = parsePcap(pcap(linktype, handshake(42).map(wrap)));
      expect(file.linktype).toBe(linktype);
      expect(file.skipped).toBe(0);
      const [syn, synAck, ack, data, fin] = file.segments;
      if (!syn || !synAck || !ack || !data || !fin) throw new Error("expected 5 segments");
      expect([syn.saddr, syn.sport, syn.daddr, syn.dport]).toEqual(["10.1.1.1", 40000, "10.1.1.2", 8081]);
      expect(file.segments.map(segmentKind)).toEqual(["syn", "syn-ack", "ack", "data", "fin"]);
      expect(syn.options.map((o) => o.kind).filter((k) => k !== 1)).toEqual([2, 4, 8, 3, 253]);
      expect(indigoDye(syn, EXID)).toBe(42);
      expect(indigoDye(synAck, EXID)).toBe(42);
      expect(indigoDye(ack, EXID)).toBeUndefined();
      expect(indigoDye(data, EXID)).toBe(0);
      expect(new TextDecoder().decode(data.payload)).toBe("GET /r/7 HTTP/1.1\r\n\r\n");
      expect(syn.tsUs).toBe(1_700_000_000 * 1e6 + 250);
      expect(data.seq).toBe(1000);
      expect(data.ack).toBe(2000);
    });
  }

  test("a kind-253 option with another ExID is not Indigo's; big-endian files read the same", () => {
    const seg = ipTcp({ sport: 1, dport: 2, flags: 0x02, options: [...indigoOpt(0xbeef, 7), ...MSS] });
    const file = parsePcap(pcap(LINKTYPE_EN10MB, [eth(seg)], { le: false }));
    const s = file.segments[0];
    expect(s && indigoDye(s, EXID)).toBeUndefined();
    expect(s && indigoDye(s, 0xbeef)).toBe(7);
    expect(s?.expOptions).toEqual([{ exid: 0xbeef, dye: 7 }]);
  });

  test("a dye with the top bit set stays an unsigned u32", () => {
    const seg = ipTcp({ sport: 1, dport: 2, flags: 0x02, options: indigoOpt(EXID, 0xdeadbeef) });
    const s = parsePcap(pcap(LINKTYPE_EN10MB, [eth(seg)])).segments[0];
    expect(s && indigoDye(s, EXID)).toBe(0xdeadbeef);
  });

  test("non-TCP frames are skipped, a truncated last record is ignored", () => {
    const arp = new Uint8Array(42);
    arp.set([0x08, 0x06], 12);
    const frames = [
      eth(ipTcp({ sport: 1, dport: 2, flags: 0x10 })),
      arp,
      eth(ipTcp({ sport: 3, dport: 4, flags: 2 })),
    ];
    const file = parsePcap(pcap(LINKTYPE_EN10MB, frames, { truncateLast: 5 }));
    expect(file.segments.map((s) => s.sport)).toEqual([1]);
    expect(file.skipped).toBe(1);
  });

  test("refuses pcapng and unknown link types with a message", () => {
    const ng = new Uint8Array(32);
    ng.set([0x0a, 0x0d, 0x0d, 0x0a]);
    expect(() => parsePcap(ng)).toThrow("pcapng is not supported");
    expect(() => parsePcap(pcap(147, [new Uint8Array(40)]))).toThrow("pcap link type 147 is not supported");
  });
});

describe("parseTcpOptions", () => {
  test("NOP, EOL and a malformed length", () => {
    expect(parseTcpOptions(new Uint8Array([1, 1, 0, 9, 9])).map((o) => o.kind)).toEqual([1, 1, 0]);
    expect(() => parseTcpOptions(new Uint8Array([253, 8, 0, 0]))).toThrow("malformed TCP option kind 253");
  });
});
