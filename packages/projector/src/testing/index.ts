// Test and benchmark helpers: a sandbox on the real servers and builders for the events fed to it.
export { spawnProjector } from "./child.ts";
export { BOOT_NS, dyeBatch, type Ev, releaseCreated, releaseStarted } from "./events.ts";
export { projectUntilCaughtUp } from "./project.ts";
export { createSandbox, type Sandbox } from "./sandbox.ts";
export { snapshot } from "./snapshot.ts";
export { produceAgentBatches } from "./stream.ts";
