// One event as the JSON line the standalone CLI prints, written straight from its record's bytes: the same
// text as JSON.stringify(decodeDyeEvent(bytes)), without first building that object, its three 64-bit ids as
// bigints and its addresses as arrays. The standalone agent of the kernel benchmark took most of a core at
// its ~75 000 events/s, and on a 2-core machine that CPU became the engine runs' tail latency.
import { dottedAt, ipv6Text } from "@indigo/bus/addresses";
import {
  cString,
  DYE_EVENT_SIZE,
  KINDS,
  METHOD_MAX,
  DYE_EVENT_OFFSETS as O,
  PATH_MAX,
  SOURCES,
  sized,
  TRACE_ID_MAX,
} from "./decode-dye-event.ts";

const TWO_32 = 4_294_967_296;

/** An unsigned 64-bit little-endian integer in decimal; exact (a double holds it below 2^53). */
function u64Text(v: DataView, at: number): string {
  const lo = v.getUint32(at, true);
  const hi = v.getUint32(at + 4, true);
  return hi < 0x20_0000 ? String(hi * TWO_32 + lo) : v.getBigUint64(at, true).toString();
}

function address(b: Uint8Array, family: number, at: number): string {
  return family === 10 ? ipv6Text(b.subarray(at, at + 16)) : dottedAt(b, at);
}

/** The JSON line (with its newline) of a struct dye_event record; throws as decodeDyeEvent does. */
export function dyeEventJsonLine(b: Uint8Array): string {
  if (b.length < DYE_EVENT_SIZE - 4) throw new Error(`dye_event is ${DYE_EVENT_SIZE} bytes, got ${b.length}`);
  const v = new DataView(b.buffer, b.byteOffset, b.byteLength);
  const kind = KINDS[b[O.kind] ?? 0];
  if (!kind) throw new Error(`dye_event has unknown kind ${b[O.kind]}`);
  const family = b[O.family] ?? 0;
  let line =
    `{"ts_ns":"${u64Text(v, O.ts_ns)}","kind":"${kind}","dye":${v.getUint32(O.dye, true)}` +
    `,"source":"${SOURCES[b[O.source] ?? 0] ?? "none"}","direction":"${b[O.direction] === 2 ? "ingress" : "egress"}"` +
    `,"pid":${v.getUint32(O.pid, true)},"tid":${v.getUint32(O.tid, true)}` +
    `,"comm":${JSON.stringify(cString(b, O.comm, 16))},"cgroup_id":"${u64Text(v, O.cgroup_id)}"` +
    `,"saddr":"${address(b, family, O.saddr)}","sport":${v.getUint16(O.sport, true)}` +
    `,"daddr":"${address(b, family, O.daddr)}","dport":${v.getUint16(O.dport, true)}` +
    `,"socket_cookie":"${u64Text(v, O.socket_cookie)}"`;
  const traceLen = b[O.trace_id_len] ?? 0;
  if (traceLen > 0) line += `,"trace_id":${JSON.stringify(sized(b, O.trace_id, traceLen, TRACE_ID_MAX))}`;
  const methodLen = b[O.method_len] ?? 0;
  if (methodLen > 0) line += `,"method":${JSON.stringify(sized(b, O.method, methodLen, METHOD_MAX))}`;
  const pathLen = b[O.path_len] ?? 0;
  if (pathLen > 0) line += `,"path":${JSON.stringify(sized(b, O.path, pathLen, PATH_MAX))}`;
  const status = v.getUint16(O.status, true);
  if (status > 0) line += `,"status":${status}`;
  return `${line}}\n`;
}
