// Service names for the demo chain, so its coverage reads `client → hop-a → hop-b → hop-c` instead of thread
// names and addresses: callers by the cgroup each hop runs in (the cgroup id is in every event), callees by
// the port each hop listens on. Written to $INDIGO_STATE_DIR/demo/service-rules.json once the cgroups exist;
// ./dev points the projector's INDIGO_SERVICE_RULES at it (the projector reads the file again when it changes).
import { renameSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import type { ServiceRule } from "../../packages/projector/src/service-identity.ts";
import { PORTS } from "../../tests/chain/rig.ts";
import { demoDir } from "./topology.ts";

export const serviceRulesFile = (stateDir: string): string => join(demoDir(stateDir), "service-rules.json");

export const demoServiceRules = (cgroupIds: Record<"client" | "A" | "B" | "C", string>): ServiceRule[] => [
  { service: "client", cgroupId: cgroupIds.client },
  { service: "hop-a", cgroupId: cgroupIds.A },
  { service: "hop-b", cgroupId: cgroupIds.B },
  { service: "hop-c", cgroupId: cgroupIds.C },
  { service: "hop-a", port: PORTS.A },
  { service: "hop-b", port: PORTS.B },
  { service: "hop-c", port: PORTS.C },
];

export const writeServiceRules = (stateDir: string, rules: ServiceRule[]): void => {
  const file = serviceRulesFile(stateDir);
  writeFileSync(`${file}.tmp`, `${JSON.stringify(rules, null, 2)}\n`);
  // a rename: the projector never reads a half-written file
  renameSync(`${file}.tmp`, file);
};
