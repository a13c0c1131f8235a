// The BPF programs this process holds (ids from /proc/self/fdinfo) with name, tag and run statistics from
// one `bpftool -j prog show` (run_time_ns/run_cnt are 0 unless kernel.bpf_stats_enabled=1).
import { readdirSync, readFileSync } from "node:fs";

export interface ProgramStats {
  name: string;
  tag: string;
  id: number;
  runCount: bigint;
  runTimeNs: bigint;
}

export const heldProgramIds = (pid: number | "self" = "self"): number[] => {
  const ids = new Set<number>();
  for (const fd of readdirSync(`/proc/${pid}/fdinfo`)) {
    try {
      const id = /^prog_id:\s+(\d+)$/m.exec(readFileSync(`/proc/${pid}/fdinfo/${fd}`, "utf8"))?.[1];
      if (id) ids.add(Number(id));
    } catch {
      // closed while we looked
    }
  }
  return [...ids].sort((a, b) => a - b);
};

interface BpftoolProg {
  id: number;
  name?: string;
  tag?: string;
  run_time_ns?: number;
  run_cnt?: number;
}

export const programStats = async (ids: readonly number[]): Promise<ProgramStats[]> => {
  if (ids.length === 0) return [];
  const proc = Bun.spawn(["bpftool", "-j", "prog", "show"], { stdout: "pipe", stderr: "ignore" });
  const [out, code] = await Promise.all([new Response(proc.stdout).text(), proc.exited]);
  if (code !== 0) return ids.map((id) => ({ name: "", tag: "", id, runCount: 0n, runTimeNs: 0n }));
  const all = JSON.parse(out) as BpftoolProg[];
  const want = new Set(ids);
  return all
    .filter((p) => want.has(p.id))
    .map((p) => ({
      name: p.name ?? "",
      tag: p.tag ?? "",
      id: p.id,
      runCount: BigInt(p.run_cnt ?? 0),
      runTimeNs: BigInt(p.run_time_ns ?? 0),
    }));
};
