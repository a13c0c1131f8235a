// Runs a function with the calling thread in another network namespace (setns on Bun's JS thread), so
// interface lookups and tc attachments see that namespace's interfaces. Always switches back.
import { closeSync, openSync } from "node:fs";
import { usageError } from "./errors.ts";
import { ifNameToIndex, lastErrno, setns } from "./ffi.ts";

const CLONE_NEWNET = 0x4000_0000;

export const withNetns = <T>(nsPath: string | undefined, fn: () => T): T => {
  if (nsPath === undefined) return fn();
  const self = openSync("/proc/thread-self/ns/net", "r");
  const target = openSync(nsPath, "r");
  try {
    if (setns(target, CLONE_NEWNET) !== 0) throw usageError("enter", `netns ${nsPath}`, lastErrno());
    let result: { ok: true; value: T } | { ok: false; error: unknown };
    try {
      result = { ok: true, value: fn() };
    } catch (error) {
      result = { ok: false, error };
    }
    // Staying in the other namespace would be worse than any error fn() raised: check this first.
    if (setns(self, CLONE_NEWNET) !== 0) throw usageError("leave", `netns ${nsPath}`, lastErrno());
    if (!result.ok) throw result.error;
    return result.value;
  } finally {
    closeSync(target);
    closeSync(self);
  }
};

export const ifindexOf = (iface: string): number => {
  const index = ifNameToIndex(iface);
  if (index === 0) throw usageError("find", `interface ${iface}`, lastErrno());
  return index;
};
