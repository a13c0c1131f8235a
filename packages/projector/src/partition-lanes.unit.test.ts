import { expect, test } from "bun:test";
import { PartitionLanes } from "./partition-lanes.ts";

/** A batch whose apply the test finishes by hand. */
class Gate {
  private readonly waiters = new Map<string, () => void>();
  readonly started: string[] = [];
  readonly done: string[] = [];
  apply = (batch: string): Promise<void> => {
    this.started.push(batch);
    return new Promise((resolve) =>
      this.waiters.set(batch, () => {
        this.done.push(batch);
        resolve();
      }),
    );
  };
  finish(batch: string): void {
    const w = this.waiters.get(batch);
    if (!w) throw new Error(`${batch} is not running`);
    this.waiters.delete(batch);
    w();
  }
}

const tick = () => Bun.sleep(1);

test("a lane applies its batches in order, one at a time, with one waiting; a third push waits for room", async () => {
  const gate = new Gate();
  const lanes = new PartitionLanes(gate.apply, { slots: 3, log: () => {} });
  await lanes.push("p0", "a");
  await lanes.push("p0", "b");
  let thirdQueued = false;
  const third = lanes.push("p0", "c").then(() => {
    thirdQueued = true;
  });
  await tick();
  expect(gate.started).toEqual(["a"]);
  expect(thirdQueued).toBe(false);
  gate.finish("a");
  await third;
  await tick();
  expect(gate.started).toEqual(["a", "b"]);
  gate.finish("b");
  await tick();
  gate.finish("c");
  await lanes.idle();
  expect(gate.done).toEqual(["a", "b", "c"]);
});

test("lanes run side by side up to the slots; a lane's next batch starts when its previous one ends", async () => {
  const gate = new Gate();
  const lanes = new PartitionLanes(gate.apply, { slots: 2, log: () => {} });
  for (const p of ["p0", "p1", "p2"]) await lanes.push(p, `${p}.1`);
  await lanes.push("p0", "p0.2");
  await tick();
  expect(gate.started).toEqual(["p0.1", "p1.1"]);
  gate.finish("p1.1");
  await tick();
  expect(gate.started).toEqual(["p0.1", "p1.1", "p2.1"]);
  gate.finish("p0.1");
  await tick();
  expect(gate.started).toEqual(["p0.1", "p1.1", "p2.1", "p0.2"]);
  gate.finish("p2.1");
  gate.finish("p0.2");
  await lanes.idle();
});

test("a failed batch is retried until it applies, and the lane's next batch waits for it", async () => {
  const tries: string[] = [];
  const logged: string[] = [];
  let failures = 2;
  const lanes = new PartitionLanes(
    async (batch: string) => {
      tries.push(batch);
      if (batch === "a" && failures-- > 0) throw new Error("connection reset");
    },
    { slots: 1, log: (l) => logged.push(l), retryMs: 1, maxRetryMs: 2 },
  );
  await lanes.push("p0", "a");
  await lanes.push("p0", "b");
  await lanes.idle();
  expect(tries).toEqual(["a", "a", "a", "b"]);
  expect(logged).toHaveLength(2);
  expect(logged[0]).toContain("applying a batch of p0 failed, retrying in 1 ms: connection reset");
});

test("stop drops waiting batches, wakes waiting pushes and lets the running batch finish", async () => {
  const gate = new Gate();
  const lanes = new PartitionLanes(gate.apply, { slots: 1, log: () => {} });
  await lanes.push("p0", "a");
  await lanes.push("p0", "b");
  const blocked = lanes.push("p0", "c");
  await tick();
  let stopped = false;
  const stopping = lanes.stop().then(() => {
    stopped = true;
  });
  await blocked;
  await tick();
  expect(stopped).toBe(false);
  gate.finish("a");
  await stopping;
  expect(gate.started).toEqual(["a"]);
  expect(gate.done).toEqual(["a"]);
  await lanes.push("p0", "d");
  expect(gate.started).toEqual(["a"]);
});

test("a free slot goes to the partition with the most left to apply; pushes of one turn are weighed together", async () => {
  const gate = new Gate();
  const lanes = new PartitionLanes(gate.apply, { slots: 2, log: () => {} });
  // One fetch's batches, pushed in partition order: the two with the longest backlog start.
  await lanes.push("p0", "p0.small", 10);
  await lanes.push("p1", "p1.long", 900);
  await lanes.push("p2", "p2.mid", 300);
  await lanes.push("p3", "p3.tiny", 2);
  await tick();
  expect(gate.started).toEqual(["p1.long", "p2.mid"]);
  // A lane asks for a slot only for the batch it starts next: p1's next one waits for p1's first.
  await lanes.push("p1", "p1.next", 600);
  gate.finish("p2.mid");
  await tick();
  expect(gate.started).toEqual(["p1.long", "p2.mid", "p0.small"]);
  // Then it has the most left, ahead of p3 which waited longer.
  gate.finish("p1.long");
  await tick();
  expect(gate.started).toEqual(["p1.long", "p2.mid", "p0.small", "p1.next"]);
  gate.finish("p0.small");
  await tick();
  expect(gate.started.at(-1)).toBe("p3.tiny");
  gate.finish("p1.next");
  gate.finish("p3.tiny");
  await lanes.idle();
});
