// A small pcap reader for the kernel tests: every TCP segment of a capture with its 4-tuple, flags, options
// and the Indigo dye option (kind 253, length 8: RFC 6994 ExID u16 + dye u32, network order).
// Link types: EN10MB (tcpdump -i <veth>), LINUX_SLL (-i any, older libpcap), LINUX_SLL2 (-i any), RAW.
import { readFileSync } from "node:fs";

export const LINKTYPE_EN10MB = 1;
export const LINKTYPE_RAW = 101;
export const LINKTYPE_LINUX_SLL = 113;
export const LINKTYPE_LINUX_SLL2 = 276;

/** TCP option kind of the Indigo dye (RFC 4727 experimental kind with an RFC 6994 ExID). */
export const TCP_OPT_EXP = 253;
export const INDIGO_OPT_LEN = 8;

export interface TcpOption {
  readonly kind: number;
  /** Bytes after kind and length (empty for NOP/EOL). */
  readonly data: Uint8Array;
}

export interface TcpSegment {
  /** Capture timestamp in microseconds since the epoch. */
  readonly tsUs: number;
  /** Index of the packet in the file (0-based), for messages. */
  readonly index: number;
  readonly saddr: string;
  readonly sport: number;
  readonly daddr: string;
  readonly dport: number;
  readonly seq: number;
  readonly ack: number;
  readonly flags: {
    readonly syn: boolean;
    readonly ack: boolean;
    readonly fin: boolean;
    readonly rst: boolean;
    readonly psh: boolean;
  };
  readonly options: readonly TcpOption[];
  readonly payload: Uint8Array;
  /** Kind 253 options of Indigo's length, whatever their ExID. */
  readonly expOptions: readonly { exid: number; dye: number }[];
}

export type SegmentKind = "syn" | "syn-ack" | "data" | "fin" | "rst" | "ack";

/** One label per segment: SYN, SYN-ACK, FIN and RST win over data; data over a pure ACK. */
export const segmentKind = (s: TcpSegment): SegmentKind => {
  if (s.flags.syn) return s.flags.ack ? "syn-ack" : "syn";
  if (s.flags.rst) return "rst";
  if (s.flags.fin) return "fin";
  return s.payload.length > 0 ? "data" : "ack";
};

/** The Indigo option of a segment for this ExID: its dye, or undefined when the segment has none. */
export const indigoDye = (s: TcpSegment, exid: number): number | undefined =>
  s.expOptions.find((o) => o.exid === exid)?.dye;

export const parseTcpOptions = (bytes: Uint8Array): TcpOption[] => {
  const out: TcpOption[] = [];
  let i = 0;
  while (i < bytes.length) {
    const kind = bytes[i] ?? 0;
    if (kind === 0) {
      out.push({ kind, data: new Uint8Array(0) });
      break; // end of option list
    }
    if (kind === 1) {
      out.push({ kind, data: new Uint8Array(0) });
      i += 1;
      continue;
    }
    const len = bytes[i + 1];
    if (len === undefined || len < 2 || i + len > bytes.length) {
      throw new Error(
        `malformed TCP option kind ${kind} at offset ${i}: length ${len} in ${bytes.length} bytes`,
      );
    }
    out.push({ kind, data: bytes.slice(i + 2, i + len) });
    i += len;
  }
  return out;
};

const ipv4 = (b: Uint8Array, off: number): string => `${b[off]}.${b[off + 1]}.${b[off + 2]}.${b[off + 3]}`;

const ipv6 = (b: Uint8Array, off: number): string => {
  const parts: string[] = [];
  for (let i = 0; i < 16; i += 2) parts.push((((b[off + i] ?? 0) << 8) | (b[off + i + 1] ?? 0)).toString(16));
  return parts.join(":");
};

/** Parses an IP packet (v4 or v6) carrying TCP; undefined for anything else. */
export const parseIpTcp = (pkt: Uint8Array, tsUs: number, index: number): TcpSegment | undefined => {
  const v = new DataView(pkt.buffer, pkt.byteOffset, pkt.byteLength);
  if (pkt.length < 1) return undefined;
  const version = (pkt[0] ?? 0) >> 4;
  let saddr: string;
  let daddr: string;
  let l4: number;
  let l4end: number;
  if (version === 4) {
    if (pkt.length < 20) return undefined;
    const ihl = ((pkt[0] ?? 0) & 0x0f) * 4;
    if ((pkt[9] ?? 0) !== 6) return undefined;
    const fragOff = v.getUint16(6) & 0x1fff;
    if (fragOff !== 0) return undefined;
    saddr = ipv4(pkt, 12);
    daddr = ipv4(pkt, 16);
    l4 = ihl;
    l4end = Math.min(pkt.length, v.getUint16(2));
  } else if (version === 6) {
    if (pkt.length < 40 || (pkt[6] ?? 0) !== 6) return undefined; // extension headers: not used here
    saddr = ipv6(pkt, 8);
    daddr = ipv6(pkt, 24);
    l4 = 40;
    l4end = Math.min(pkt.length, 40 + v.getUint16(4));
  } else {
    return undefined;
  }
  if (l4end - l4 < 20) return undefined;
  const doff = ((pkt[l4 + 12] ?? 0) >> 4) * 4;
  const fl = pkt[l4 + 13] ?? 0;
  const options = parseTcpOptions(pkt.slice(l4 + 20, l4 + doff));
  const expOptions = options
    .filter((o) => o.kind === TCP_OPT_EXP && o.data.length === INDIGO_OPT_LEN - 2)
    .map((o) => {
      const d = new DataView(o.data.buffer, o.data.byteOffset, o.data.byteLength);
      return { exid: d.getUint16(0), dye: d.getUint32(2) };
    });
  return {
    tsUs,
    index,
    saddr,
    daddr,
    sport: v.getUint16(l4),
    dport: v.getUint16(l4 + 2),
    seq: v.getUint32(l4 + 4),
    ack: v.getUint32(l4 + 8),
    flags: {
      fin: (fl & 0x01) !== 0,
      syn: (fl & 0x02) !== 0,
      rst: (fl & 0x04) !== 0,
      psh: (fl & 0x08) !== 0,
      ack: (fl & 0x10) !== 0,
    },
    options,
    payload: pkt.slice(l4 + doff, l4end),
    expOptions,
  };
};

const ETH_P_IP = 0x0800;
const ETH_P_IPV6 = 0x86dd;

/** The IP packet inside one link-layer frame, or undefined when it carries something else. */
const ipPayload = (linktype: number, frame: Uint8Array): Uint8Array | undefined => {
  const v = new DataView(frame.buffer, frame.byteOffset, frame.byteLength);
  let proto: number;
  let off: number;
  switch (linktype) {
    case LINKTYPE_EN10MB: {
      if (frame.length < 14) return undefined;
      off = 12;
      proto = v.getUint16(off);
      off += 2;
      while ((proto === 0x8100 || proto === 0x88a8) && frame.length >= off + 4) {
        proto = v.getUint16(off + 2);
        off += 4;
      }
      break;
    }
    case LINKTYPE_LINUX_SLL:
      if (frame.length < 16) return undefined;
      proto = v.getUint16(14);
      off = 16;
      break;
    case LINKTYPE_LINUX_SLL2:
      if (frame.length < 20) return undefined;
      proto = v.getUint16(0);
      off = 20;
      break;
    case LINKTYPE_RAW:
      return frame;
    default:
      throw new Error(`pcap link type ${linktype} is not supported (EN10MB, RAW, LINUX_SLL, LINUX_SLL2 are)`);
  }
  return proto === ETH_P_IP || proto === ETH_P_IPV6 ? frame.subarray(off) : undefined;
};

export interface PcapFile {
  readonly linktype: number;
  readonly segments: TcpSegment[];
  /** Packets that were not IPv4/IPv6 TCP (ARP, ICMP, ...). */
  readonly skipped: number;
}

/** Parses a classic pcap file (either byte order, µs or ns timestamps). pcapng is refused. */
export const parsePcap = (file: Uint8Array): PcapFile => {
  if (file.length < 24) throw new Error(`pcap file too short: ${file.length} bytes`);
  const v = new DataView(file.buffer, file.byteOffset, file.byteLength);
  const magicBe = v.getUint32(0, false);
  let le: boolean;
  let nano = false;
  if (magicBe === 0xa1b2c3d4 || magicBe === 0xa1b23c4d) {
    le = false;
    nano = magicBe === 0xa1b23c4d;
  } else if (magicBe === 0xd4c3b2a1 || magicBe === 0x4d3cb2a1) {
    le = true;
    nano = magicBe === 0x4d3cb2a1;
  } else if (magicBe === 0x0a0d0d0a) {
    throw new Error("pcapng is not supported: capture with tcpdump -w (classic pcap)");
  } else {
    throw new Error(`not a pcap file (magic 0x${magicBe.toString(16)})`);
  }
  const linktype = v.getUint32(20, le) & 0x0fffffff;
  const segments: TcpSegment[] = [];
  let skipped = 0;
  let off = 24;
  let index = 0;
  // A capture stopped mid-write (tcpdump -U killed) may end with a partial record: ignore it.
  while (off + 16 <= file.length) {
    const sec = v.getUint32(off, le);
    const frac = v.getUint32(off + 4, le);
    const incl = v.getUint32(off + 8, le);
    if (off + 16 + incl > file.length) break;
    const frame = file.subarray(off + 16, off + 16 + incl);
    const tsUs = sec * 1e6 + (nano ? Math.floor(frac / 1000) : frac);
    const ip = ipPayload(linktype, frame);
    const seg = ip ? parseIpTcp(ip, tsUs, index) : undefined;
    if (seg) segments.push(seg);
    else skipped++;
    off += 16 + incl;
    index++;
  }
  return { linktype, segments, skipped };
};

/** A TCP segment as the engine's tests read it: the dye of the option with their ExID, the payload's size. */
export interface DyedSegment extends TcpSegment {
  readonly payloadLen: number;
  readonly dye?: number;
}

/** The TCP segments of a pcap file, each with the dye its Indigo option (ExID `exid`) carries, if any. */
export const readPcap = (path: string, exid: number): DyedSegment[] =>
  parsePcap(readFileSync(path)).segments.map((s) => ({
    ...s,
    payloadLen: s.payload.length,
    dye: indigoDye(s, exid),
  }));
