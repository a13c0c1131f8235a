// A minimal pcap reader for tests: Ethernet/IPv4/TCP segments with their TCP options, and the Indigo dye
// option (kind 253, length 8, 16-bit ExID, 32-bit dye) when a segment carries it.
import { readFileSync } from "node:fs";

export interface TcpSegment {
  src: string;
  dst: string;
  sport: number;
  dport: number;
  flags: { syn: boolean; ack: boolean; fin: boolean; rst: boolean; psh: boolean };
  payloadLen: number;
  /** raw options: kind + data (no NOP/EOL) */
  options: { kind: number; data: Uint8Array }[];
  /** the dye option's value when present with the given ExID */
  dye?: number;
}

export const readPcap = (file: string, exid: number): TcpSegment[] => {
  const b = readFileSync(file);
  const v = new DataView(b.buffer, b.byteOffset, b.byteLength);
  const magic = v.getUint32(0, true);
  const le = magic === 0xa1b2c3d4 || magic === 0xa1b23c4d;
  if (!le && v.getUint32(0, false) !== 0xa1b2c3d4 && v.getUint32(0, false) !== 0xa1b23c4d) {
    throw new Error(`${file} is not a pcap file`);
  }
  const linktype = v.getUint32(20, le);
  const l2 = linktype === 1 ? 14 : linktype === 113 ? 16 : linktype === 276 ? 20 : -1;
  if (l2 < 0) throw new Error(`pcap link type ${linktype} not supported`);
  const out: TcpSegment[] = [];
  for (let at = 24; at + 16 <= b.length; ) {
    const incl = v.getUint32(at + 8, le);
    const pkt = at + 16;
    at = pkt + incl;
    const ip = pkt + l2;
    if (ip + 20 > b.length || b[ip]! >> 4 !== 4 || b[ip + 9] !== 6) continue;
    const ihl = (b[ip]! & 0xf) * 4;
    const total = v.getUint16(ip + 2, false);
    const tcp = ip + ihl;
    const doff = (b[tcp + 12]! >> 4) * 4;
    const fl = b[tcp + 13]!;
    const options: TcpSegment["options"] = [];
    for (let o = tcp + 20; o < tcp + doff; ) {
      const kind = b[o]!;
      if (kind === 0) break;
      if (kind === 1) {
        o++;
        continue;
      }
      const len = b[o + 1]!;
      if (len < 2) break;
      options.push({ kind, data: new Uint8Array(b.subarray(o + 2, o + len)) });
      o += len;
    }
    const seg: TcpSegment = {
      src: Array.from(b.subarray(ip + 12, ip + 16)).join("."),
      dst: Array.from(b.subarray(ip + 16, ip + 20)).join("."),
      sport: v.getUint16(tcp, false),
      dport: v.getUint16(tcp + 2, false),
      flags: { fin: !!(fl & 1), syn: !!(fl & 2), rst: !!(fl & 4), psh: !!(fl & 8), ack: !!(fl & 16) },
      payloadLen: total - ihl - doff,
      options,
    };
    const opt = options.find(
      (o) => o.kind === 253 && o.data.length === 6 && ((o.data[0]! << 8) | o.data[1]!) === exid,
    );
    if (opt) seg.dye = new DataView(opt.data.buffer, opt.data.byteOffset).getUint32(2, false);
    out.push(seg);
  }
  return out;
};
