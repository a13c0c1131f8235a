// Connections established before the engine was attached (bpf/dye_adopt.bpf.c): no sock_ops callback ever
// runs on them, so a pooled connection opened before the agent started would never carry a dye. Run once
// after sock_ops is attached: the tcp iterator walks the sockets of the network namespace it is created in,
// so it is run in each namespace the cgroup's processes live in (a node's pods each have their own).
import { readlinkSync } from "node:fs";
import { pidsInCgroupTree } from "../cgroup.ts";
import type { BpfObject } from "../libbpf/index.ts";
import { withNetns } from "../libbpf/index.ts";

export interface Adoption {
  /** network namespaces walked */
  readonly netns: number;
  /** namespaces that could not be entered (their last process exited meanwhile), with the reason */
  readonly skipped: string[];
  /** why nothing was taken in (the iterator could not be attached or created) */
  readonly error?: string;
}

const message = (error: unknown): string => (error instanceof Error ? error.message : String(error));

/** One `/proc/<pid>/ns/net` per network namespace (by its `net:[inode]`) the processes live in. */
const namespacesOf = (pids: number[]): Map<string, string> => {
  const spaces = new Map<string, string>();
  for (const pid of pids) {
    const path = `/proc/${pid}/ns/net`;
    try {
      const id = readlinkSync(path);
      if (!spaces.has(id)) spaces.set(id, path);
    } catch {
      // exited meanwhile
    }
  }
  return spaces;
};

/**
 * Gives the established TCP connections of the cgroup at `cgroupPath` (id `cgroupId`) the engine's socket
 * state and option callbacks (counters `adopted`, `adopt_failed`). Best effort, never throws: the engine
 * serves the connections established from now on whatever happens here.
 */
export const adoptEstablished = (obj: BpfObject, cgroupPath: string, cgroupId: bigint): Adoption => {
  try {
    return adopt(obj, cgroupPath, cgroupId);
  } catch (error) {
    return { netns: 0, skipped: [], error: message(error) };
  }
};

const adopt = (obj: BpfObject, cgroupPath: string, cgroupId: bigint): Adoption => {
  const scope = new Uint8Array(8);
  new DataView(scope.buffer).setBigUint64(0, cgroupId, true);
  obj.map("adopt_scope").update(new Uint8Array(4), scope);
  const spaces = namespacesOf(pidsInCgroupTree(cgroupPath));
  const skipped: string[] = [];
  const link = obj.program("adopt_tcp").attach();
  try {
    for (const [id, path] of spaces) {
      try {
        withNetns(path, () => link.runIterator());
      } catch (error) {
        skipped.push(`${id}: ${message(error)}`);
      }
    }
  } finally {
    link.destroy();
  }
  return { netns: spaces.size - skipped.length, skipped };
};
