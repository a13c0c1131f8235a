// Writes a rule set into the kernel without a reload and without a reader ever seeing half of it: the
// encoded rules go into the inactive half of the `rules` map, then dye_config.active_rule_set flips.
import type { BpfMap } from "../libbpf/index.ts";
import { decodeDyeConfig, dyeConfigKey } from "./dye-config.ts";

export const DYE_MAX_RULES = 16;

const u32Key = (n: number): Uint8Array => {
  const key = new Uint8Array(4);
  new DataView(key.buffer).setUint32(0, n, true);
  return key;
};

/** `slots`: one encoded struct dye_rule each (rules/compile.ts), first match wins. Returns the new set. */
export const writeRuleSet = (rules: BpfMap, dyeConfig: BpfMap, slots: readonly Uint8Array[]): 0 | 1 => {
  if (slots.length > DYE_MAX_RULES) {
    throw new Error(`at most ${DYE_MAX_RULES} rules fit one rule set, got ${slots.length}`);
  }
  const current = dyeConfig.lookup(dyeConfigKey());
  if (!current) throw new Error("dye_config has no entry 0");
  const config = decodeDyeConfig(current);
  const next: 0 | 1 = config.activeRuleSet === 0 ? 1 : 0;
  const empty = new Uint8Array(rules.valueSize);
  for (let i = 0; i < DYE_MAX_RULES; i++) {
    const slot = slots[i] ?? empty;
    if (slot.length !== rules.valueSize) {
      throw new Error(`rule ${i} is ${slot.length} bytes, struct dye_rule is ${rules.valueSize}`);
    }
    rules.update(u32Key(next * DYE_MAX_RULES + i), slot);
  }
  // Only active_rule_set (offset 12) changes; every other byte is written back as read.
  const flipped = current.slice();
  new DataView(flipped.buffer).setUint32(12, next, true);
  dyeConfig.update(dyeConfigKey(), flipped);
  return next;
};
