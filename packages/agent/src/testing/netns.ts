// Test helpers for real-kernel tests: two network namespaces joined by a veth pair, processes started
// inside a cgroup *and* a netns (the cgroup first: `ip netns exec` remounts /sys), tcpdump captures.
// Every name carries a unique tag so concurrent tests never collide; destroy() is idempotent.
import { type ChildProcess, spawn, spawnSync } from "node:child_process";

const sh = (cmd: string): string => {
  const run = spawnSync("sh", ["-c", cmd], { encoding: "utf8" });
  if (run.status !== 0) throw new Error(`${cmd}: ${run.stderr || run.stdout}`);
  return run.stdout;
};

let seq = 0;

export interface VethPair {
  /** netns names (ip netns) */
  readonly nsA: string;
  readonly nsB: string;
  readonly ifA: string;
  readonly ifB: string;
  readonly ipA: string;
  readonly ipB: string;
  nsPath(ns: string): string;
  /** runs a shell command in a namespace, synchronously; throws with stderr on failure */
  exec(ns: string, cmd: string): string;
  destroy(): void;
}

/** Two fresh namespaces, a veth between them, 10.<x>.<y>.1 ↔ .2/24, both ends up, lo up. */
export const createVethPair = (): VethPair => {
  const n = (process.pid % 1000) * 100 + (seq++ % 100);
  const tag = `ig${n}`;
  const nsA = `${tag}a`;
  const nsB = `${tag}b`;
  const ifA = `${tag}va`;
  const ifB = `${tag}vb`;
  const net = `10.${200 + (n % 50)}.${Math.floor(n / 50) % 250}`;
  const ipA = `${net}.1`;
  const ipB = `${net}.2`;
  const destroy = () => {
    spawnSync("ip", ["netns", "del", nsA]);
    spawnSync("ip", ["netns", "del", nsB]);
  };
  try {
    sh(`ip netns add ${nsA} && ip netns add ${nsB}`);
    sh(`ip link add ${ifA} netns ${nsA} type veth peer name ${ifB} netns ${nsB}`);
    sh(
      `ip -n ${nsA} addr add ${ipA}/24 dev ${ifA} && ip -n ${nsA} link set ${ifA} up && ip -n ${nsA} link set lo up`,
    );
    sh(
      `ip -n ${nsB} addr add ${ipB}/24 dev ${ifB} && ip -n ${nsB} link set ${ifB} up && ip -n ${nsB} link set lo up`,
    );
  } catch (e) {
    destroy();
    throw e;
  }
  return {
    nsA,
    nsB,
    ifA,
    ifB,
    ipA,
    ipB,
    nsPath: (ns) => `/run/netns/${ns}`,
    exec: (ns, cmd) => sh(`ip netns exec ${ns} sh -c '${cmd.replaceAll("'", "'\\''")}'`),
    destroy,
  };
};

/** argv that enters `cgroupPath` (when given), then `ns`, then execs `argv`. */
export const inCgroupAndNetns = (cgroupPath: string | undefined, ns: string, argv: string[]): string[] => [
  "sh",
  "-c",
  `${cgroupPath ? 'echo $$ > "$0/cgroup.procs" && ' : ""}ns=$1; shift; exec ip netns exec "$ns" "$@"`,
  cgroupPath ?? "-",
  ns,
  ...argv,
];

export interface Capture {
  stop(): Promise<void>;
  readonly file: string;
}

/** tcpdump -w in `ns` on `iface`; resolves once tcpdump listens. */
export const startCapture = async (
  ns: string,
  iface: string,
  file: string,
  filter = "tcp",
): Promise<Capture> => {
  const child: ChildProcess = spawn(
    "ip",
    ["netns", "exec", ns, "tcpdump", "--immediate-mode", "-U", "-n", "-i", iface, "-w", file, filter],
    {
      stdio: ["ignore", "ignore", "pipe"],
    },
  );
  await new Promise<void>((resolve, reject) => {
    let err = "";
    const timer = setTimeout(() => reject(new Error(`tcpdump did not start: ${err}`)), 10_000);
    child.stderr?.on("data", (d: Buffer) => {
      err += d.toString();
      if (err.includes("listening on")) {
        clearTimeout(timer);
        resolve();
      }
    });
    child.on("exit", (code) => {
      clearTimeout(timer);
      reject(new Error(`tcpdump exited ${code}: ${err}`));
    });
  });
  return {
    file,
    stop: () =>
      new Promise<void>((resolve) => {
        child.removeAllListeners("exit");
        child.on("exit", () => resolve());
        child.kill("SIGINT");
      }),
  };
};
