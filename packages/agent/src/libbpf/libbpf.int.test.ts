// koffi → libbpf against the real kernel: load sock_dye.bpf.o, attach it to a fresh cgroup-v2 child,
// write its config from Bun, and count the callbacks of real TCP connections made inside that cgroup.
// Root + BPF only: skips with a reason elsewhere, except under CI=true where it must run.
import { afterAll, beforeAll, expect, test } from "bun:test";
import { spawnSync } from "node:child_process";
import { existsSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { bpfObjectPath } from "../bpf-objects.ts";
import { ensureBpffs } from "../bpffs.ts";
import { ChildCgroup, findCgroup2Root } from "../cgroup.ts";
import {
  decodeSockDyeConfig,
  encodeSockDyeConfig,
  type SockDyeConfig,
  sockDyeConfigKey,
  sockDyeMark,
} from "../sock-dye-config.ts";
import { readSockDyeCounters, type SockDyeCounters, SockOp } from "../sock-dye-counters.ts";
import { bpftoolJson } from "../testing/bpftool.ts";
import { cleanUp } from "../testing/cleanup.ts";
import { buildBpf, skipping } from "../testing/kernel-gate.ts";
import { type BpfLink, type BpfMap, BpfObject, LibbpfError, numPossibleCpus } from "./index.ts";

const T = 30_000;
const REPO = join(import.meta.dir, "../../../..");
const OBJECT = bpfObjectPath("sock_dye");
const CI = process.env.CI === "true";

const has = (cmd: string): boolean => spawnSync("sh", ["-c", `command -v ${cmd}`]).status === 0;

const missing = (): string | undefined => {
  if (process.getuid?.() !== 0) return "needs root (CAP_BPF, CAP_NET_ADMIN, cgroup writes)";
  if (!existsSync("/sys/kernel/btf/vmlinux")) return "kernel has no BTF (/sys/kernel/btf/vmlinux)";
  if (findCgroup2Root() === undefined) return "no cgroup v2 mount in /proc/mounts";
  // make/clang build the objects, bpftool cross-checks libbpf, python3 makes the test traffic.
  for (const tool of ["make", "clang", "bpftool", "python3"])
    if (!has(tool)) return `${tool} is not installed`;
  return undefined;
};

const skipReason = missing();
if (skipReason && !CI) console.warn(`skipping libbpf integration tests: ${skipReason}`);
const it = skipReason && !CI ? test.skip : test;

const hex = (bytes: Uint8Array): string[] => Array.from(bytes, (b) => `0x${b.toString(16).padStart(2, "0")}`);

let obj: BpfObject | undefined;
let link: BpfLink | undefined;
let cgroup: ChildCgroup | undefined;
let pinDir: string | undefined;

beforeAll(() => {
  if (skipping("libbpf integration tests", skipReason)) return;
  buildBpf(OBJECT);
  pinDir = join(ensureBpffs(), `indigo-test-${process.pid}`);
  mkdirSync(pinDir, { recursive: true });
  cgroup = ChildCgroup.create(findCgroup2Root() ?? "", `indigo-test-libbpf-${process.pid}`);
}, T);

// One cleanup path, safe from any point: every step runs even if an earlier one throws. Pins go
// before the cgroup, so a link a failed test left pinned is released first.
afterAll(
  () =>
    cleanUp([
      () => link?.destroy(),
      () => obj?.close(),
      () => pinDir && rmSync(pinDir, { recursive: true, force: true }),
      () => cgroup?.remove(),
    ]),
  T,
);

const thrown = (fn: () => unknown): Error => {
  try {
    fn();
  } catch (e) {
    if (e instanceof Error) return e;
    throw new Error(`threw a non-Error: ${String(e)}`);
  }
  throw new Error("expected a throw, got none");
};

const loaded = (): BpfObject => {
  if (!obj) throw new Error("sock_dye.bpf.o was not loaded by the first test");
  return obj;
};

test(
  "a missing object file fails as 'failed to open BPF object <path>: <errno text>'",
  () => {
    expect(() => BpfObject.open("/nonexistent/x.bpf.o")).toThrow(
      "failed to open BPF object /nonexistent/x.bpf.o: No such file or directory",
    );
  },
  T,
);

it(
  "opens and loads sock_dye.bpf.o through koffi → libbpf",
  () => {
    obj = BpfObject.open(OBJECT);
    expect(obj.name).toBe("sock_dye");
    obj.load();
    expect(obj.program("handle_sock_ops").fd).toBeGreaterThan(0);
    const config = obj.map("dye_config");
    expect([config.keySize, config.valueSize, config.maxEntries]).toEqual([4, 16, 1]);
    const counters = obj.map("counters");
    expect([counters.isPerCpu, counters.valueSize, counters.maxEntries]).toEqual([true, 8, 38]);
    expect(numPossibleCpus()).toBeGreaterThan(0);
    const err = thrown(() => loaded().map("nope"));
    expect(err).toBeInstanceOf(LibbpfError);
    expect(err.message).toBe("failed to find map nope in sock_dye: No such file or directory");
  },
  T,
);

// The verifier log is what `indigo-agent doctor` will explain: it must reach the error, not stderr.
it(
  "a verifier rejection fails with EACCES and carries the verifier log",
  () => {
    const dir = mkdtempSync(join(tmpdir(), "indigo-bad-bpf-"));
    try {
      const src = join(dir, "bad.bpf.c");
      writeFileSync(
        src,
        [
          '#include "vmlinux.h"',
          "#include <bpf/bpf_helpers.h>",
          'char LICENSE[] SEC("license") = "GPL";',
          'SEC("sockops") int bad(struct bpf_sock_ops *skops) { return *(int *)(long)skops->op; }',
        ].join("\n"),
      );
      const cc = spawnSync(
        "clang",
        [
          "-target",
          "bpf",
          "-g",
          "-O2",
          "-I",
          join(REPO, "bpf/build"),
          "-c",
          src,
          "-o",
          join(dir, "bad.bpf.o"),
        ],
        { encoding: "utf8" },
      );
      expect(cc.stderr).toBe("");
      const bad = BpfObject.open(join(dir, "bad.bpf.o"));
      try {
        const err = thrown(() => bad.load());
        expect(err).toBeInstanceOf(LibbpfError);
        expect(err.message).toBe("failed to load BPF object bad: Permission denied");
        expect((err as LibbpfError).errno).toBe(13);
        expect((err as LibbpfError).log.join("")).toContain("R1 invalid mem access 'scalar'");
      } finally {
        bad.close();
      }
      expect(thrown(() => bad.map("x")).message).toBe("failed to find map x in bad: object is closed");
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  },
  T,
);

it(
  "attaches handle_sock_ops to a fresh child cgroup through a pinned bpf_link",
  () => {
    const cg = cgroup!;
    link = cg.withFd((fd) => loaded().program("handle_sock_ops").attachCgroup(fd, cg.path));
    link.pin(join(pinDir!, "handle_sock_ops_link"));
    expect(bpftoolJson("link", "show", "pinned", join(pinDir!, "handle_sock_ops_link"))).toMatchObject({
      type: "cgroup",
      attach_type: "cgroup_sock_ops",
    });
    expect(bpftoolJson("cgroup", "show", cg.path)).toEqual([
      expect.objectContaining({ attach_type: "cgroup_sock_ops", name: "handle_sock_ops" }),
    ]);
  },
  T,
);

const configMap = (): BpfMap => loaded().map("dye_config");
const writeConfig = (config: SockDyeConfig): void =>
  configMap().update(sockDyeConfigKey(), encodeSockDyeConfig(config));

it(
  "a config written from Bun reads back identical through libbpf and through bpftool",
  () => {
    const config = { defaultDye: 0xdeadbeef, markBase: 0x1234_0000, markMask: 0x0000_ffff, setMark: true };
    const bytes = encodeSockDyeConfig(config);
    writeConfig(config);

    const back = configMap().lookup(sockDyeConfigKey());
    expect(back).toEqual(bytes);
    expect(decodeSockDyeConfig(back!)).toEqual(config);

    // Independently of libbpf: bpftool reads the pinned map and formats it with the object's BTF,
    // which also checks this package's layout against the C struct.
    const pinned = join(pinDir!, "dye_config");
    configMap().pin(pinned);
    expect(bpftoolJson("map", "dump", "pinned", pinned)).toEqual([
      {
        key: hex(sockDyeConfigKey()),
        value: hex(bytes),
        formatted: {
          key: 0,
          value: { default_dye: 0xdeadbeef, mark_base: 0x1234_0000, mark_mask: 0xffff, flags: 1 },
        },
      },
    ]);
  },
  T,
);

// One loopback TCP connection whose both ends live in one python3 process. `inCgroup` moves the shell
// into the cgroup before exec, so the connection is made there from its first syscall.
const connectOnce = (inCgroup: boolean): { clientMark: number; serverMark: number } => {
  const script = [
    "import socket",
    "srv = socket.socket(); srv.bind(('127.0.0.1', 0)); srv.listen(1)",
    "cli = socket.create_connection(srv.getsockname()); acc, _ = srv.accept()",
    "cli.sendall(b'ping'); assert acc.recv(4) == b'ping'",
    "print(cli.getsockopt(socket.SOL_SOCKET, 36), acc.getsockopt(socket.SOL_SOCKET, 36))",
  ].join("\n");
  const enter = inCgroup ? 'echo $$ > "$0/cgroup.procs" && ' : "";
  const run = spawnSync("sh", ["-c", `${enter}exec python3 -c "$1"`, cgroup!.path, script], {
    encoding: "utf8",
  });
  if (run.status !== 0) throw new Error(`traffic helper failed: ${run.stderr}`);
  const [clientMark, serverMark] = run.stdout.trim().split(" ").map(Number);
  return { clientMark: clientMark ?? -1, serverMark: serverMark ?? -1 };
};

const delta = (before: SockDyeCounters, after: SockDyeCounters) => ({
  connect: after.byOp[SockOp.TCP_CONNECT]! - before.byOp[SockOp.TCP_CONNECT]!,
  listen: after.byOp[SockOp.TCP_LISTEN]! - before.byOp[SockOp.TCP_LISTEN]!,
  activeEstablished: after.byOp[SockOp.ACTIVE_ESTABLISHED]! - before.byOp[SockOp.ACTIVE_ESTABLISHED]!,
  passiveEstablished: after.byOp[SockOp.PASSIVE_ESTABLISHED]! - before.byOp[SockOp.PASSIVE_ESTABLISHED]!,
  dyed: after.dyed - before.dyed,
  undyed: after.undyed - before.undyed,
  marked: after.marked - before.marked,
  failed: after.storageFailed - before.storageFailed + (after.markFailed - before.markFailed),
});

const dyeing: SockDyeConfig = { defaultDye: 0x2a, markBase: 0x0100_0000, markMask: 0xff, setMark: true };
const cases = [
  {
    name: "dyed and marked inside the cgroup",
    inCgroup: true,
    config: dyeing,
    marks: { clientMark: 0x0100_002a, serverMark: 0x0100_002a },
    counts: { connect: 1n, listen: 1n, activeEstablished: 1n, passiveEstablished: 1n, dyed: 2n, undyed: 0n },
  },
  {
    name: "counted but left undyed when default_dye is 0",
    inCgroup: true,
    config: { ...dyeing, defaultDye: 0 },
    marks: { clientMark: 0, serverMark: 0 },
    counts: { connect: 1n, listen: 1n, activeEstablished: 1n, passiveEstablished: 1n, dyed: 0n, undyed: 2n },
  },
  {
    name: "not seen at all outside the cgroup",
    inCgroup: false,
    config: dyeing,
    marks: { clientMark: 0, serverMark: 0 },
    counts: { connect: 0n, listen: 0n, activeEstablished: 0n, passiveEstablished: 0n, dyed: 0n, undyed: 0n },
  },
];

for (const c of cases) {
  it(
    `real loopback TCP: ${c.name}`,
    () => {
      expect(sockDyeMark(dyeing, dyeing.defaultDye)).toBe(0x0100_002a);
      writeConfig(c.config);
      const counters = loaded().map("counters");
      const before = readSockDyeCounters(counters);
      const marks = connectOnce(c.inCgroup);
      const d = delta(before, readSockDyeCounters(counters));
      expect(marks).toEqual(c.marks);
      expect(d).toEqual({ ...c.counts, marked: c.counts.dyed, failed: 0n });
    },
    T,
  );
}

it(
  "unpinning and destroying the link detaches the program from the cgroup",
  () => {
    link!.unpin();
    link!.destroy();
    expect(bpftoolJson("cgroup", "show", cgroup!.path)).toEqual([]);
  },
  T,
);
