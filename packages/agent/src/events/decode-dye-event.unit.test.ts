import { expect, test } from "bun:test";
import { DYE_EVENT_SIZE, decodeDyeEvent, formatAddress, DYE_EVENT_OFFSETS as O } from "./decode-dye-event.ts";

const T = 5_000;

const sample = (): Uint8Array => {
  const b = new Uint8Array(DYE_EVENT_SIZE);
  const v = new DataView(b.buffer);
  v.setBigUint64(O.ts_ns, 123_456_789_012_345_678n, true);
  v.setBigUint64(O.cgroup_id, 2n ** 63n + 5n, true);
  v.setBigUint64(O.socket_cookie, 4097n, true);
  v.setUint32(O.pid, 100, true);
  v.setUint32(O.tid, 101, true);
  v.setUint32(O.dye, 0xdeadbeef, true);
  b[O.source] = 1;
  b[O.direction] = 1;
  b[O.kind] = 1;
  b[O.family] = 2;
  v.setUint16(O.sport, 40000, true);
  v.setUint16(O.dport, 8080, true);
  b.set([10, 0, 0, 1], O.saddr);
  b.set([10, 0, 0, 2], O.daddr);
  b.set(new TextEncoder().encode("python3"), O.comm);
  const put = (at: number, lenAt: number, s: string) => {
    b.set(new TextEncoder().encode(s), at);
    b[lenAt] = s.length;
  };
  put(O.method, O.method_len, "GET");
  put(O.path, O.path_len, "/api/x");
  put(O.trace_id, O.trace_id_len, "t-0123abcd");
  return b;
};

test(
  "decodes every field of struct dye_event, 64-bit ids as decimal strings",
  () => {
    expect(decodeDyeEvent(sample())).toEqual({
      ts_ns: "123456789012345678",
      kind: "request",
      dye: 0xdeadbeef,
      source: "payload",
      direction: "egress",
      pid: 100,
      tid: 101,
      comm: "python3",
      cgroup_id: "9223372036854775813",
      saddr: "10.0.0.1",
      sport: 40000,
      daddr: "10.0.0.2",
      dport: 8080,
      socket_cookie: "4097",
      trace_id: "t-0123abcd",
      method: "GET",
      path: "/api/x",
    });
  },
  T,
);

test(
  "a response carries its status; an ingress event says so; unknown kinds are refused",
  () => {
    const b = sample();
    const v = new DataView(b.buffer);
    b[O.kind] = 2;
    b[O.direction] = 2;
    b[O.source] = 3;
    v.setUint16(O.status, 503, true);
    expect(decodeDyeEvent(b)).toMatchObject({
      kind: "response",
      direction: "ingress",
      source: "tcp_option",
      status: 503,
    });
    b[O.kind] = 9;
    expect(() => decodeDyeEvent(b)).toThrow("unknown kind 9");
    expect(() => decodeDyeEvent(new Uint8Array(10))).toThrow("dye_event is 272 bytes, got 10");
  },
  T,
);

test(
  "IPv6 addresses in RFC 5952 short form",
  () => {
    const a = new Uint8Array(16);
    a.set([0x20, 0x01, 0x0d, 0xb8], 0);
    a[15] = 1;
    expect(formatAddress(10, a)).toBe("2001:db8::1");
    expect(formatAddress(10, new Uint8Array(16))).toBe("::");
    // v4-mapped (an IPv6 socket that took IPv4) with its IPv4 part dotted, RFC 5952 section 5
    expect(formatAddress(10, new Uint8Array([0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 255, 255, 10, 0, 2, 2]))).toBe(
      "::ffff:10.0.2.2",
    );
    expect(formatAddress(2, new Uint8Array([127, 0, 0, 1]))).toBe("127.0.0.1");
  },
  T,
);
