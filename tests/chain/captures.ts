// tcpdump on the connecting end of each of the chain's three links, and the segments read back afterwards.
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { type Capture, startCapture } from "../../packages/agent/src/testing/capture.ts";
import { parsePcap, type TcpSegment } from "../../packages/agent/src/testing/pcap.ts";
import type { ChainNet } from "./topology.ts";

const captureFiles = (dir: string) => [1, 2, 3].map((n) => join(dir, `link${n}.pcap`));

/** tcpdump on the connecting end of every link; each one tracked by net (teardown stops it) once it listens. */
export const startCaptures = (net: ChainNet, dir: string): Promise<Capture[]> => {
  const files = captureFiles(dir);
  return Promise.all(
    net.topo.links.map(async (l, i) => {
      const cap = await startCapture(l.left.ns, l.left.ifname, files[i] ?? "");
      net.track(cap.proc);
      return cap;
    }),
  );
};

export const readCaptures = (dir: string): TcpSegment[][] =>
  captureFiles(dir).map((f) => parsePcap(new Uint8Array(readFileSync(f))).segments);
