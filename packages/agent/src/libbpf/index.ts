// Typed wrapper over the system libbpf (koffi FFI). The only door to the kernel's BPF objects:
// open → load → find program/map → attach → read/write maps → destroy/close.
export { errnoText, LibbpfError, setLibbpfWarningSink } from "./errors.ts";
export type { BpfLink } from "./link.ts";
export { BPF_ANY, BPF_EXIST, BPF_NOEXIST, type BpfMap, numPossibleCpus, openPinned } from "./map.ts";
export { ifindexOf, withNetns } from "./netns.ts";
export { BpfObject } from "./object.ts";
export type { BpfProgram } from "./program.ts";
export { RingBuffer } from "./ringbuf.ts";
export { TcAttachment } from "./tc.ts";
