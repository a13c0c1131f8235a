// The kernel payload scanner (bpf/lib/http_scan.bpf.h) on crafted sends through BPF_PROG_TEST_RUN
// (bpf/parse_harness.bpf.c), with rules compiled by ./compile.ts and written by the engine's rule writer.
// Where it helps, the kernel's answer is compared with the TypeScript reference of the same matching.
// Root + BPF only: skips with a reason elsewhere, except under CI=true where it must run.
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { spawnSync } from "node:child_process";
import { existsSync } from "node:fs";
import { bpfObjectPath } from "../bpf-objects.ts";
import { type DyeConfig, defaultDyeConfig, dyeConfigKey, encodeDyeConfig } from "../engine/dye-config.ts";
import { writeRuleSet } from "../engine/rule-writer.ts";
import { numPossibleCpus } from "../libbpf/index.ts";
import { buildBpf, skipping } from "../testing/kernel-gate.ts";
import { compileRules, DyeRuleLayout, inPercentCohort, traceIdOf } from "./compile.ts";
import { HARNESS_RESULT_SIZE, HarnessResultLayout, ParseHarness } from "./harness.ts";
import { compilePattern, matchTraceId } from "./pattern.ts";
import type { CohortRuleInput } from "./types.ts";

const T = 60_000;
const OBJECT = bpfObjectPath("parse_harness");
const CI = process.env.CI === "true";
const CTR_SCAN_TRUNCATED = 6;

const missing = (): string | undefined => {
  if (process.getuid?.() !== 0) return "needs root (CAP_BPF for BPF_PROG_TEST_RUN)";
  if (!existsSync("/sys/kernel/btf/vmlinux")) return "kernel has no BTF (/sys/kernel/btf/vmlinux)";
  for (const tool of ["make", "clang", "bpftool", "python3"]) {
    if (spawnSync("sh", ["-c", `command -v ${tool}`]).status !== 0) return `${tool} is not installed`;
  }
  return undefined;
};
const skipReason = missing();
if (skipReason && !CI) console.warn(`skipping parser integration tests: ${skipReason}`);
const it = skipReason && !CI ? test.skip : test;

let h: ParseHarness | undefined;
const harness = (): ParseHarness => {
  if (!h) throw new Error("parse_harness.bpf.o is not loaded");
  return h;
};

const PATTERN = "^t-[a-f0-9]{8}-[a-f0-9]{4}";
const RULES: CohortRuleInput[] = [
  { dye: 7, traceIdPattern: PATTERN },
  { dye: 5, traceIdPattern: "^[0-9a-f]{32}" },
  { dye: 8, header: { name: "X-Cohort", value: "canary" } },
  { dye: 9, sni: "canary.example.com" },
  { dye: 11, traceIdPattern: "^[a-z]{64}" },
];

const setConfig = (patch: Partial<DyeConfig> = {}): void => {
  const map = harness().map("dye_config");
  const current = map.lookup(dyeConfigKey());
  const activeRuleSet = current ? ((new DataView(current.buffer).getUint32(12, true) & 1) as 0 | 1) : 0;
  map.update(dyeConfigKey(), encodeDyeConfig({ ...defaultDyeConfig(), activeRuleSet, ...patch }));
};
const setRules = (rules: readonly CohortRuleInput[]): void => {
  writeRuleSet(harness().map("rules"), harness().map("dye_config"), compileRules(rules));
};
const truncatedCount = (): bigint => {
  const per = harness()
    .map("counters")
    .lookupPerCpu(new Uint8Array([CTR_SCAN_TRUNCATED, 0, 0, 0]));
  return (per ?? []).reduce((s, b) => s + new DataView(b.buffer, b.byteOffset).getBigUint64(0, true), 0n);
};

const request = (headers: string[], line = "GET /api/orders?id=3 HTTP/1.1"): string =>
  `${line}\r\n${headers.map((x) => `${x}\r\n`).join("")}\r\n`;
const ID = "t-0123abcd-ffff";

beforeAll(() => {
  if (skipping("parser integration tests", skipReason)) return;
  buildBpf(undefined, "build/parse_harness.bpf.o");
  h = new ParseHarness(OBJECT);
  setConfig();
  setRules(RULES);
}, T);

afterAll(() => h?.close());

/** struct member offsets of `name` from the object's BTF (bpftool -j btf dump). */
const btfOffsets = (name: string): Record<string, number> & { size: number } => {
  const run = spawnSync("bpftool", ["-j", "btf", "dump", "file", OBJECT], { encoding: "utf8" });
  if (run.status !== 0) throw new Error(run.stderr);
  const types = JSON.parse(run.stdout).types as {
    kind: string;
    name: string;
    size: number;
    members?: { name: string; bits_offset: number }[];
  }[];
  const t = types.find((x) => x.kind === "STRUCT" && x.name === name);
  if (!t?.members) throw new Error(`struct ${name} not in the BTF of ${OBJECT}`);
  return Object.assign(Object.fromEntries(t.members.map((m) => [m.name, m.bits_offset / 8])), {
    size: t.size,
  });
};

describe("layouts match the C side (BTF of parse_harness.bpf.o)", () => {
  it("struct dye_rule is what compile.ts encodes", () => {
    const { size, ...offsets } = DyeRuleLayout;
    expect(btfOffsets("dye_rule")).toEqual({ ...offsets, size });
  });
  it("struct harness_result is what harness.ts decodes", () => {
    expect(btfOffsets("harness_result")).toEqual({ ...HarnessResultLayout, size: HARNESS_RESULT_SIZE });
  });
});

describe("trace-id header", () => {
  it("a matching id dyes the request; method, path and trace id are reported", () => {
    harness().reset();
    const r = harness().send(request(["Host: shop", `X-Trace-Id: ${ID}`, "Accept: */*"]));
    expect(r).toMatchObject({
      judged: true,
      dye: 7,
      source: 1,
      bestSlot: 0,
      method: "GET",
      path: "/api/orders?id=3",
    });
    expect(r.traceId).toBe(ID);
    expect(r.inHeaders).toBe(false);
  });

  // [header line, expected dye]: near-misses must not match; the TS reference must agree with the kernel.
  const cases: [string, string, number][] = [
    ["exact", `X-Trace-Id: ${ID}`, 7],
    ["header name in upper case", `X-TRACE-ID: ${ID}`, 7],
    ["no space after colon, trailing spaces", `x-trace-id:${ID}   `, 7],
    ["id followed by a delimiter", `X-Trace-Id: ${ID};sampled=1`, 7],
    ["one char off (g not hex)", "X-Trace-Id: t-0123abcg-ffff", 0],
    ["upper-case hex", "X-Trace-Id: t-0123ABCD-ffff", 0],
    ["too short", "X-Trace-Id: t-0123abcd-fff", 0],
    ["too long", "X-Trace-Id: t-0123abcd-fffff", 0],
    ["wrong prefix", "X-Trace-Id: u-0123abcd-ffff", 0],
    ["header name with a suffix", `X-Trace-Idx: ${ID}`, 0],
    ["header name prefix only", `X-Trace-I: ${ID}`, 0],
    ["name with a space before the colon", `X-Trace-Id : ${ID}`, 0],
    ["id only in another header", `X-Other: ${ID}`, 0],
    ["65-byte token is no trace id", `X-Trace-Id: ${ID}${"a".repeat(50)}`, 0],
  ];
  const ref = compilePattern(PATTERN);
  for (const [name, line, dye] of cases) {
    it(`${name}: dye ${dye}`, () => {
      harness().reset();
      const r = harness().send(request(["Host: shop", line]));
      expect({ line, judged: r.judged, dye: r.dye }).toEqual({ line, judged: true, dye });
      // the TS reference of the same matching
      const m = /^x-trace-id:[ \t]*(.*?)[ \t]*$/i.exec(line);
      const id = m ? traceIdOf(m[1] as string, false) : undefined;
      expect({ line, ref: id !== undefined && matchTraceId(ref, id) }).toEqual({ line, ref: dye === 7 });
    });
  }

  it("traceparent (W3C): the id after 00- is matched", () => {
    harness().reset();
    const id = "4bf92f3577b34da6a3ce929d0e0e4736";
    const r = harness().send(request([`traceparent: 00-${id}-00f067aa0ba902b7-01`]));
    expect(r).toMatchObject({ judged: true, dye: 5, traceId: id });
    harness().reset();
    const bad = harness().send(request([`traceparent: 01-${id}-00f067aa0ba902b7-01`]));
    expect(bad).toMatchObject({ judged: true, dye: 0, traceId: "" });
  });

  it("the id split across two sends matches at every split point", () => {
    const full = request(["Host: shop", `X-Trace-Id: ${ID}`, "Accept: */*"]);
    const from = full.indexOf("\r\n") + 2;
    const idLineEnd = full.indexOf("\r\n", full.indexOf("X-Trace-Id")) + 2;
    for (let cut = from; cut < full.length; cut++) {
      harness().reset();
      const a = harness().send(full.slice(0, cut));
      const b = harness().send(full.slice(cut));
      // judged once: by the first send that reaches past the trace-id line (nothing after it can change
      // the dye), else by the one that ends the header block
      const judged = a.judged ? a : b;
      expect({
        cut,
        once: a.judged !== b.judged,
        inFirst: a.judged,
        dye: judged.dye,
        id: judged.traceId,
      }).toEqual({
        cut,
        once: true,
        inFirst: cut > idLineEnd,
        dye: 7,
        id: ID,
      });
    }
  });

  it("a header beyond the first kilobyte is found", () => {
    harness().reset();
    const filler = Array.from({ length: 30 }, (_, i) => `X-Filler-${i}: ${"v".repeat(60)}`);
    const req = request(["Host: shop", ...filler, `X-Trace-Id: ${ID}`]);
    expect(req.indexOf("X-Trace-Id")).toBeGreaterThan(2000);
    const r = harness().send(req);
    expect(r).toMatchObject({ judged: true, truncated: false, dye: 7, traceId: ID });
  });

  it("a send is read in two parts: lines across the first part's end, a request line longer than it", () => {
    const straddle = (pad: number) => request([`X-Pad: ${"p".repeat(pad)}`, `X-Trace-Id: ${ID}`]);
    for (let pad = 150; pad < 260; pad += 3) {
      harness().reset();
      harness().send(request(["Host: shop"])); // not the first send of the connection: two parts
      const r = harness().send(straddle(pad));
      expect({ pad, judged: r.judged, truncated: r.truncated, dye: r.dye, id: r.traceId }).toEqual({
        pad,
        judged: true,
        truncated: false,
        dye: 7,
        id: ID,
      });
    }
    harness().reset();
    harness().send(request(["Host: shop"]));
    const longLine = `GET /search?q=${"x".repeat(400)} HTTP/1.1\r\nHost: shop\r\nX-Trace-Id: ${ID}\r\n\r\n`;
    expect(harness().send(longLine)).toMatchObject({ judged: true, truncated: false, dye: 7, method: "GET" });
  });

  it("a request larger than the scan window: judged on the window, truncated only when still undecided", () => {
    setConfig({ scanMaxBytes: 512 });
    try {
      const filler = Array.from({ length: 12 }, (_, i) => `X-Filler-${i}: ${"v".repeat(60)}`);
      const before = truncatedCount();
      harness().reset();
      harness().send(request(["Host: shop"])); // the first send of a connection is read whole (TLS)
      // decided by the trace id in the first part read: the rest of the window is not even read
      const inside = harness().send(request(["Host: shop", `X-Trace-Id: ${ID}`, ...filler]));
      expect(inside).toMatchObject({
        judged: true,
        truncated: false,
        dye: 7,
        scanned: 256,
        inHeaders: false,
      });
      harness().reset();
      const outside = harness().send(request(["Host: shop", ...filler, `X-Trace-Id: ${ID}`]));
      expect(outside).toMatchObject({ judged: true, truncated: true, dye: 0, traceId: "", scanned: 512 });
      expect(truncatedCount() - before).toBe(1n);
      // the next request on the same socket is judged on its own
      const next = harness().send(request([`X-Trace-Id: ${ID}`]));
      expect(next).toMatchObject({ judged: true, truncated: false, dye: 7 });
    } finally {
      setConfig();
    }
  });
});

describe("header rule", () => {
  const cases: [string, string, number][] = [
    ["exact value", "X-Cohort: canary", 8],
    ["name case-insensitive, value trimmed", "x-COHORT:   canary  ", 8],
    ["value with extra chars", "X-Cohort: canary2", 0],
    ["value prefix", "X-Cohort: canar", 0],
    ["value case differs", "X-Cohort: Canary", 0],
  ];
  for (const [name, line, dye] of cases) {
    it(`${name}: dye ${dye}`, () => {
      harness().reset();
      expect(harness().send(request(["Host: a", line]))).toMatchObject({ judged: true, dye });
    });
  }
  it("first rule in slot order wins, wherever its header is", () => {
    harness().reset();
    const r = harness().send(request(["X-Cohort: canary", `X-Trace-Id: ${ID}`]));
    expect(r).toMatchObject({ dye: 7, bestSlot: 0 });
  });
});

describe("per request on one connection", () => {
  it("a cohort request then a plain one: each judged on its own, nothing stale survives", () => {
    harness().reset();
    const long = "q".repeat(64);
    const a = harness().send(request([`X-Trace-Id: ${long}`]));
    expect(a).toMatchObject({ judged: true, dye: 11, traceId: long });
    const b = harness().send(request(["Host: shop"], "POST /pay HTTP/1.1"));
    expect(b).toMatchObject({
      judged: true,
      dye: 0,
      traceId: "",
      method: "POST",
      path: "/pay",
      bestSlot: 255,
    });
    expect(b.traceIdRaw.every((x) => x === 0)).toBe(true);
  });
  it("a body that follows in a later send is not scanned as headers", () => {
    harness().reset();
    harness().send(request(["Content-Length: 30"], "POST /x HTTP/1.1"));
    const body = harness().send(`X-Trace-Id: ${ID}\r\n\r\n`);
    expect(body).toMatchObject({ judged: false, dye: 0 });
  });
});

describe("response status line", () => {
  for (const [line, status] of [
    ["HTTP/1.1 200 OK", 200],
    ["HTTP/1.0 503 Service Unavailable", 503],
  ] as const) {
    it(line, () => {
      harness().reset();
      const r = harness().send(`${line}\r\nContent-Length: 0\r\n\r\n`);
      expect(r).toMatchObject({ response: true, status, judged: false });
    });
  }
  it("not a status line: HTTP/2 preface, garbage", () => {
    for (const bytes of ["PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n", "HTTP/1.1 2x0 OK\r\n\r\n", "hello"]) {
      harness().reset();
      expect(harness().send(bytes)).toMatchObject({ response: false, judged: false });
    }
  });
});

describe("percent cohort", () => {
  it("25 % of 2000 ids, stable per id, exactly as the TypeScript reference", () => {
    setRules([{ dye: 3, percent: 25 }]);
    try {
      let dyed = 0;
      for (let i = 0; i < 2000; i++) {
        const id = `req-${i.toString(36)}-${(i * 7919).toString(16)}`;
        harness().reset();
        const r = harness().send(request([`X-Trace-Id: ${id}`]));
        const again = harness().send(request([`X-Trace-Id: ${id}`]));
        expect({ id, dye: r.dye, again: again.dye }).toEqual({
          id,
          dye: inPercentCohort(id, 25) ? 3 : 0,
          again: r.dye,
        });
        if (r.dye) dyed++;
      }
      // binomial(2000, 0.25): mean 500, sd 19.4
      expect(dyed).toBeGreaterThan(440);
      expect(dyed).toBeLessThan(560);
    } finally {
      setRules(RULES);
    }
  });
});

const clientHello = (host: string): Uint8Array => {
  const py = `
import ssl, sys
ctx = ssl.create_default_context(); ctx.check_hostname = False; ctx.verify_mode = ssl.CERT_NONE
i, o = ssl.MemoryBIO(), ssl.MemoryBIO()
s = ctx.wrap_bio(i, o, server_hostname=sys.argv[1])
try:
    s.do_handshake()
except ssl.SSLWantReadError:
    pass
sys.stdout.buffer.write(o.read())`;
  const run = spawnSync("python3", ["-c", py, host]);
  if (run.status !== 0) throw new Error(`python3 ClientHello: ${run.stderr}`);
  return new Uint8Array(run.stdout);
};

describe("TLS ClientHello SNI", () => {
  const cases: [string, number][] = [
    ["canary.example.com", 9],
    ["api.canary.example.com", 9],
    ["API.Canary.Example.COM", 9],
    ["notcanary.example.com", 0],
    ["canary.example.com.evil.net", 0],
    ["example.com", 0],
  ];
  for (const [host, dye] of cases) {
    it(`${host}: dye ${dye}`, () => {
      harness().reset();
      const r = harness().send(clientHello(host));
      expect(r).toMatchObject({ tls: true, sni: host.toLowerCase(), dye, source: dye ? 2 : 0 });
    });
  }
  it("only the first send of a connection is examined", () => {
    harness().reset();
    harness().send(request(["Host: a"]));
    expect(harness().send(clientHello("canary.example.com"))).toMatchObject({ tls: false, dye: 0 });
  });
});

describe("cost", () => {
  it("kernel run time per send (BPF_PROG_TEST_RUN, repeat 1000)", () => {
    harness().reset();
    const typical = request([
      "Host: shop.internal:8080",
      "User-Agent: python-requests/2.31",
      "Accept-Encoding: gzip, deflate",
      "Accept: */*",
      "Connection: keep-alive",
      `X-Trace-Id: ${ID}`,
    ]);
    const r = harness().send(typical, 1000);
    console.log(
      `scan of a ${typical.length}-byte request with a trace-id rule: ${r.durationNs} ns per run (${numPossibleCpus()} cpus)`,
    );
    expect(r.dye).toBe(7);
    expect(r.durationNs).toBeLessThan(20_000);
  });
});
