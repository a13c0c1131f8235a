// tcpdump -w on one interface inside a network namespace, for tests that judge the wire.
import { netnsExec } from "./netns.ts";
import { type Proc, spawnProc, stopProc } from "./proc.ts";

export interface Capture {
  readonly file: string;
  /** tcpdump itself (its stderr says how many packets it captured) */
  readonly proc: Proc;
  /** Gives tcpdump a moment to read what is in flight, then SIGINT: it flushes and closes the file. */
  stop(): Promise<void>;
}

/** Resolves once tcpdump listens; on a failure to start, tcpdump is stopped and the error names it. */
export const startCapture = async (
  ns: string,
  iface: string,
  file: string,
  filter = "tcp",
): Promise<Capture> => {
  const proc = spawnProc(
    `tcpdump ${iface}`,
    netnsExec(ns, [
      "tcpdump",
      "-i",
      iface,
      "-w",
      file,
      "-U",
      // Without immediate mode, packets wait in TPACKET_V3 blocks and a SIGINT loses them ("0 packets captured").
      "--immediate-mode",
      "-Z",
      "root",
      "-n",
      "-s",
      "0",
      filter,
    ]),
  );
  try {
    await proc.err.waitFor((l) => l.includes("listening on"), 10_000, `tcpdump on ${iface} in ${ns}`);
  } catch (e) {
    await stopProc(proc, 1000, "SIGKILL");
    throw new Error(`${(e as Error).message}: ${proc.err.lines.join(" | ")}`);
  }
  return {
    file,
    proc,
    stop: async () => {
      await Bun.sleep(300);
      await stopProc(proc, 3000, "SIGINT");
    },
  };
};
