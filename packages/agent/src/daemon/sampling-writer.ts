// Per-class sampling rates → the engine's `sampling` map (ARRAY indexed by EventClass, u32 events kept per
// million; bpf/dye_rules.h), through the engine's public map access.
import type { EventClass } from "@indigo/proto";
import type { BpfMap } from "../libbpf/index.ts";

const u32 = (n: number): Uint8Array => {
  const b = new Uint8Array(4);
  new DataView(b.buffer).setUint32(0, n >>> 0, true);
  return b;
};

export const writeSampling = (sampling: BpfMap, rates: ReadonlyMap<EventClass, number>): void => {
  for (const [cls, perMillion] of rates) sampling.update(u32(cls), u32(perMillion));
};

export const readSampling = (sampling: BpfMap, cls: EventClass): number | undefined => {
  const v = sampling.lookup(u32(cls));
  return v ? new DataView(v.buffer, v.byteOffset, 4).getUint32(0, true) : undefined;
};
