// Where the compiled BPF objects are: `make -C bpf` writes them to <repo>/bpf/build/.
// INDIGO_BPF_DIR overrides that for an installed agent.
import { fileURLToPath } from "node:url";

export const bpfBuildDir = (): string =>
  process.env.INDIGO_BPF_DIR ?? fileURLToPath(new URL("../../../bpf/build/", import.meta.url));

export const bpfObjectPath = (name: string): string => `${bpfBuildDir().replace(/\/?$/, "/")}${name}.bpf.o`;
