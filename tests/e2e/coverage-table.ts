// The demo chain's coverage, hop by hop, as the end-to-end test reads it back from the API and prints it when
// an assertion fails.

/** The demo's three hops, named by the service rules it writes. */
export const HOPS = [
  { name: "client → A", caller: "client", callee: "hop-a" },
  { name: "A → B", caller: "hop-a", callee: "hop-b" },
  { name: "B → C", caller: "hop-b", callee: "hop-c" },
] as const;

export interface HopCoverage {
  caller: string;
  callee: string;
  expected: number;
  dyed: number;
  bySource: Record<string, number>;
}
export interface Coverage {
  overall: { expected: number; dyed: number; bySource: Record<string, number> };
  hops: HopCoverage[];
}

/** Per hop of the chain, by the callee's name (the demo's service rules name callers and callees). */
export const perHop = (c: Coverage) =>
  HOPS.map((h) => {
    const rows = c.hops.filter((r) => r.callee === h.callee);
    const missed = rows.reduce((n, r) => n + (r.bySource.none ?? 0), 0);
    return {
      hop: h.name,
      expected: rows.reduce((n, r) => n + r.expected, 0),
      dyed: rows.reduce((n, r) => n + r.dyed, 0),
      missed,
      callers: rows.map((r) => r.caller),
    };
  });

export const table = (c: Coverage | undefined, want: number): string =>
  c
    ? `${perHop(c)
        .map(
          (h) =>
            `  ${h.hop.padEnd(11)} expected ${h.expected} (want ${want})  dyed ${h.dyed} (want ${want})  missed ${h.missed}  callers ${h.callers.join(",")}`,
        )
        .join("\n")}\n  overall ${JSON.stringify(c.overall)}\n  rows ${JSON.stringify(c.hops)}`
    : "  no coverage read yet";
