// @indigo/agent — the per-node process that owns Indigo's eBPF programs. So far: the libbpf binding
// (koffi → system libbpf.so.1), cgroup-v2 and bpffs discovery, and the sock_dye program's map codecs.
export { bpfBuildDir, bpfObjectPath } from "./bpf-objects.ts";
export { DEFAULT_BPFFS, ensureBpffs, findBpffs } from "./bpffs.ts";
export { ChildCgroup, findCgroup2Root, openCgroupFd } from "./cgroup.ts";
export * from "./libbpf/index.ts";
export * from "./sock-dye-config.ts";
export * from "./sock-dye-counters.ts";
