import { describe, expect, test } from "bun:test";
import { AgentStatusSchema, create, EventClass } from "@indigo/proto";
import {
  type AgentObservation,
  type ClassCounters,
  PER_MILLION,
  type PerClass,
  SAMPLING_CLASSES,
  SamplingController,
  waterFill,
} from "./sampling.ts";
import { observationOf } from "./sampling-tick.ts";

const { REQUEST: REQ, RESPONSE: RESP, CONNECTION: CONN } = EventClass;
const PERIOD_S = 5;
const t0 = Date.parse("2026-01-01T00:00:00Z");

const pc = (req: number, resp: number, conn: number): PerClass<number> => ({
  [REQ]: req,
  [RESP]: resp,
  [CONN]: conn,
});

/**
 * A simulated agent: cumulative per-class kernel counters advanced one period at a time by the offered rates,
 * the rates the controller last set (sampling, as the kernel does it, in expectation) and the given drops.
 */
class FakeAgent {
  i = 0;
  counters: PerClass<{ wanted: number; sampledOut: number; reserveFailed: number }> = {
    [REQ]: { wanted: 0, sampledOut: 0, reserveFailed: 0 },
    [RESP]: { wanted: 0, sampledOut: 0, reserveFailed: 0 },
    [CONN]: { wanted: 0, sampledOut: 0, reserveFailed: 0 },
  };
  constructor(
    readonly c: SamplingController,
    readonly id = "a1",
  ) {}
  status(): AgentObservation {
    const classes = {} as PerClass<ClassCounters>;
    for (const k of SAMPLING_CLASSES) {
      const x = this.counters[k];
      classes[k] = {
        wanted: BigInt(Math.round(x.wanted)),
        sampledOut: BigInt(Math.round(x.sampledOut)),
        reserveFailed: BigInt(Math.round(x.reserveFailed)),
      };
    }
    return {
      agentId: this.id,
      at: new Date(t0 + this.i * PERIOD_S * 1000),
      classes,
      eventRatePerS: 0,
      ringbufReserveFailures: 0n,
    };
  }
  /** One period at `offered` events/s per class with `drops` per class; returns the controller's new rates. */
  period(offered: PerClass<number>, drops: PerClass<number> = pc(0, 0, 0)): PerClass<number> {
    const rates = this.c.rate(this.id);
    for (const k of SAMPLING_CLASSES) {
      const x = this.counters[k];
      x.wanted += offered[k] * PERIOD_S;
      x.sampledOut += offered[k] * PERIOD_S * (1 - rates[k] / PER_MILLION);
      x.reserveFailed += drops[k];
    }
    this.i++;
    return this.c.observe(this.status());
  }
  start(): void {
    this.c.observe(this.status());
  }
}

/** Events/s kept at these offered rates and per-class rates. */
const kept = (offered: PerClass<number>, r: PerClass<number>): number =>
  SAMPLING_CLASSES.reduce((s, k) => s + (offered[k] * r[k]) / PER_MILLION, 0);

const B = 50_000;
/**
 * The scenarios below run with ρ = 0.8 (their figures are worked out for it); the last test checks the
 * default ρ = 0.7. ρ·B: what the controller steers to.
 */
const RHO = 0.8;
const SP = RHO * B;

describe("waterFill (weighted max-min)", () => {
  const w = pc(4, 2, 1);
  test.each([
    ["everything fits", 100, pc(10, 20, 30), pc(10, 20, 30)],
    ["one class over its share takes what the others leave", 100, pc(10, 10, 500), pc(10, 10, 80)],
    ["all over: split by weight", 70, pc(500, 500, 500), pc(40, 20, 10)],
    ["REQUEST under its share, the rest split 2:1", 70, pc(10, 500, 500), pc(10, 40, 20)],
    ["idle classes get nothing", 70, pc(0, 0, 500), pc(0, 0, 70)],
  ] as const)("%s", (_name, total, demand, expected) => {
    const got = waterFill(total, demand, w);
    for (const k of SAMPLING_CLASSES) expect(got[k]).toBeCloseTo(expected[k], 6);
  });
});

describe("the control law", () => {
  test("below the budget every class keeps every event", () => {
    const a = new FakeAgent(new SamplingController({ budgetPerS: B, setpoint: RHO }));
    a.start();
    for (let i = 0; i < 3; i++)
      expect(a.period(pc(10_000, 10_000, 1_000))).toEqual(pc(PER_MILLION, PER_MILLION, PER_MILLION));
    expect(a.c.lastPeriod("a1")?.reason).toBe("steady");
  });

  test("a 10× burst with drops is cut to the budget within one period, then holds without oscillating", () => {
    const a = new FakeAgent(new SamplingController({ budgetPerS: B, setpoint: RHO }));
    a.start();
    const base = pc(20_000, 15_000, 2_000);
    a.period(base);
    const burst = pc(200_000, 150_000, 20_000);
    // The shared ring drops in every class in proportion to arrivals.
    const cut = a.period(burst, pc(50_000, 37_500, 5_000));
    const p = a.c.lastPeriod("a1");
    expect(p?.reason).toBe("burst"); // the rates in force admitted 370k/s ≫ A: the allocation cuts, A stays
    expect(p?.allowancePerS).toBe(SP);
    expect(kept(burst, cut)).toBeLessThanOrEqual(SP);
    expect(kept(burst, cut)).toBeGreaterThan(0.99 * SP);
    // Still dropping a little (the new rates arrived mid-period) while admitting above A: no further cut.
    expect(a.period(burst, pc(10, 10, 0))).toEqual(cut);
    for (let i = 0; i < 3; i++) expect(a.period(burst)).toEqual(cut);
    // Weighted: REQUEST keeps twice RESPONSE's events (4:2:1 of ρ·B, all three over their share).
    expect((burst[REQ] * cut[REQ]) / PER_MILLION).toBeCloseTo((4 / 7) * SP, -2);
  });

  test("recovery after the burst: every class back to every event within (H − 1) + 4 = 6 periods, monotonically", () => {
    const a = new FakeAgent(new SamplingController({ budgetPerS: B, setpoint: RHO }));
    a.start();
    const base = pc(20_000, 15_000, 2_000);
    a.period(base);
    a.period(pc(200_000, 150_000, 20_000), pc(1000, 1000, 100));
    const before = a.c.rate("a1");
    const seen: PerClass<number>[] = [];
    for (let i = 0; i < 6; i++) seen.push(a.period(base));
    // The peak hold: the burst's demand is remembered for H − 1 = 2 more periods before the rates climb.
    expect(seen[1]).toEqual(before);
    expect(seen[2]?.[REQ]).toBeGreaterThan(before[REQ]);
    expect(seen.at(-1)).toEqual(pc(PER_MILLION, PER_MILLION, PER_MILLION));
    for (let i = 1; i < seen.length; i++)
      for (const k of SAMPLING_CLASSES) expect(seen[i]?.[k]).toBeGreaterThanOrEqual(seen[i - 1]?.[k] ?? 0);
    // Multiplicative: no class more than doubles in one period (bounded overshoot).
    for (const k of SAMPLING_CLASSES) expect(seen[0]?.[k]).toBeLessThanOrEqual(2 * before[k]);
  });

  test("class isolation: a CONNECTION burst that fills the shared ring does not cut REQUEST or RESPONSE", () => {
    const a = new FakeAgent(new SamplingController({ budgetPerS: B, setpoint: RHO }));
    a.start();
    a.period(pc(10_000, 10_000, 2_000));
    // CONNECTION ×100; the ring fails events of every class, REQUEST included.
    const r = a.period(pc(10_000, 10_000, 200_000), pc(3_000, 3_000, 60_000));
    expect(r[REQ]).toBe(PER_MILLION);
    expect(r[RESP]).toBe(PER_MILLION);
    expect((200_000 * r[CONN]) / PER_MILLION).toBeCloseTo(SP - 20_000, -2);
    // Drops in the period after the cut are the transition (the cut reached the agent during it): no more cut.
    expect(a.period(pc(10_000, 10_000, 200_000), pc(100, 100, 2_000))).toEqual(r);
    expect(a.c.lastPeriod("a1")?.reason).toBe("burst");
    // Drops within the allowance under rates that held a whole period: A halves, and the cut is taken from
    // CONNECTION first: A ≈ ½·40k = 20k and REQUEST's weighted share of it is 4/7·20k ≈ 11.3k ≥ its 10k.
    const r2 = a.period(pc(10_000, 10_000, 200_000), pc(100, 100, 2_000));
    expect(a.c.lastPeriod("a1")?.reason).toBe("drops");
    expect(r2[REQ]).toBe(PER_MILLION);
    expect(r2[CONN]).toBeLessThan(r[CONN]);
  });

  test("drops within the allowance: A decreases from what was drained, then climbs back by doubling", () => {
    const a = new FakeAgent(new SamplingController({ budgetPerS: B, setpoint: RHO }));
    a.start();
    const load = pc(30_000, 10_000, 0); // 40k ≤ ρ·B, but this agent drains only ~30k/s
    a.period(load, pc(0, 0, 0));
    a.period(load, pc(40_000, 10_000, 0)); // 10k/s dropped
    const p = a.c.lastPeriod("a1");
    expect(p?.reason).toBe("drops");
    expect(p?.allowancePerS).toBeCloseTo(0.5 * 30_000, 0);
    expect(kept(load, a.c.rate("a1"))).toBeLessThanOrEqual(15_000 + 1);
    const allowances: number[] = [];
    for (let i = 0; i < 3; i++) {
      a.period(load);
      allowances.push(a.c.lastPeriod("a1")?.allowancePerS ?? 0);
    }
    expect(allowances).toEqual([30_000, SP, SP]);
  });

  test("a counter restart never yields a negative rate; counts restart from zero", () => {
    const a = new FakeAgent(new SamplingController({ budgetPerS: B, setpoint: RHO }));
    a.start();
    a.period(pc(10_000, 10_000, 1_000));
    a.period(pc(10_000, 10_000, 1_000));
    // The agent restarted with fresh maps: counters small again.
    for (const k of SAMPLING_CLASSES) a.counters[k] = { wanted: 1_000, sampledOut: 0, reserveFailed: 0 };
    a.i++;
    const r = a.c.observe(a.status());
    const p = a.c.lastPeriod("a1");
    expect(p?.reset).toBe(true);
    for (const k of SAMPLING_CLASSES) {
      expect(p?.offeredPerS[k]).toBeGreaterThanOrEqual(0);
      expect(r[k]).toBe(PER_MILLION);
    }
    expect(p?.droppedTotal).toBe(0);
  });

  test("an older or equal status changes nothing", () => {
    const a = new FakeAgent(new SamplingController({ budgetPerS: B, setpoint: RHO }));
    a.start();
    const cut = a.period(pc(200_000, 0, 0), pc(10, 0, 0));
    const old = a.status();
    const r = a.c.observe({ ...old, at: new Date(old.at.getTime() - 1000) });
    expect(r).toEqual(cut);
    expect(a.c.lastPeriod("a1")?.at).toEqual(old.at);
  });

  test("the floor holds under any load", () => {
    const a = new FakeAgent(new SamplingController({ budgetPerS: 1000, minPerMillion: 5000, setpoint: RHO }));
    a.start();
    for (let i = 0; i < 10; i++) a.period(pc(10_000_000, 10_000_000, 10_000_000), pc(1e5, 1e5, 1e5));
    expect(a.c.rate("a1")).toEqual(pc(5000, 5000, 5000));
    expect(
      a.c
        .rates()
        .get("a1")
        ?.map((r) => [r.class, r.perMillion]),
    ).toEqual([
      [REQ, 5000],
      [RESP, 5000],
      [CONN, 5000],
    ]);
  });

  test("a new controller starts from the rates the agent applies (an API restart does not reopen the tap)", () => {
    const c = new SamplingController({ budgetPerS: B, setpoint: RHO });
    const r = c.observe({
      agentId: "a1",
      at: new Date(t0),
      eventRatePerS: 0,
      ringbufReserveFailures: 0n,
      applied: { [REQ]: 100_000, [CONN]: 2_000 },
    });
    expect(r).toEqual(pc(100_000, PER_MILLION, 2_000));
  });

  test("an agent without per-class counters: totals, one rate for all classes", () => {
    const c = new SamplingController({ budgetPerS: B, setpoint: RHO });
    const obs = (i: number, received: number, failures: number): AgentObservation => ({
      agentId: "old",
      at: new Date(t0 + i * 5000),
      eventRatePerS: received,
      ringbufReserveFailures: BigInt(failures),
    });
    c.observe(obs(0, 20_000, 0));
    const r = c.observe(obs(1, 150_000, 250_000)); // offered 200k/s, 50k/s dropped
    expect(c.lastPeriod("old")?.source).toBe("total");
    expect(r[REQ]).toBe(200_000); // ρ·B / 200k
    expect(r[RESP]).toBe(r[REQ]);
    expect(r[CONN]).toBe(r[REQ]);
    // Next period at the new rate, no drops: 40k/s received at 20 % = 200k/s offered; holds.
    expect(c.observe(obs(2, 40_000, 250_000))).toEqual(r);
    // A restart (failures lower): counted from zero, not negative.
    c.observe(obs(3, 40_000, 10));
    expect(c.lastPeriod("old")?.reset).toBe(true);
    expect(c.lastPeriod("old")?.droppedTotal).toBe(10);
  });
});

describe("observationOf", () => {
  test("reads the per-class counters and applied rates of an AgentStatus", () => {
    const s = create(AgentStatusSchema, {
      agentId: "a1",
      timeUnixNano: BigInt(t0) * 1_000_000n,
      eventRatePerS: 12,
      ringbufReserveFailures: 7n,
      counters: {
        class_request_wanted: 100n,
        class_request_sampled_out: 10n,
        class_request_reserve_failed: 1n,
        class_response_wanted: 200n,
        class_connection_wanted: 300n,
        class_connection_reserve_failed: 6n,
      },
      sampling: [{ class: REQ, perMillion: 900_000 }],
    });
    const o = observationOf(s);
    expect(o.at.getTime()).toBe(t0);
    expect(o.classes?.[REQ]).toEqual({ wanted: 100n, sampledOut: 10n, reserveFailed: 1n });
    expect(o.classes?.[RESP]).toEqual({ wanted: 200n, sampledOut: 0n, reserveFailed: 0n });
    expect(o.classes?.[CONN].reserveFailed).toBe(6n);
    expect(o.applied).toEqual({ [REQ]: 900_000 });
  });

  test("an older agent's status has no per-class counters", () => {
    const s = create(AgentStatusSchema, { agentId: "a1", counters: { ringbuf_reserve_failed: 3n } });
    expect(observationOf(s).classes).toBeUndefined();
  });

  test("the default setpoint is ρ = 0.7: 30 % of the budget is headroom for the demand's growth after a cut", () => {
    const c = new SamplingController({ budgetPerS: B });
    const obs = (i: number, received: number): AgentObservation => ({
      agentId: "d",
      at: new Date(t0 + i * 5000),
      eventRatePerS: received,
      ringbufReserveFailures: 0n,
    });
    c.observe(obs(0, 100_000));
    const r = c.observe(obs(1, 100_000)); // offered 100k/s, no per-class counters
    expect(r[REQ]).toBe(350_000); // 0.7 · 50k / 100k
  });
});
