// Applies each partition's batches in order, a few partitions at once, without kafkajs' fetch barrier.
// kafkajs fetches from a broker, hands the batches of that fetch to eachBatch and fetches again only when every
// one of them has returned, so the slowest batch of a round ran alone at the end of it while the other cores
// idled. Here eachBatch only queues: each partition (lane) holds one batch being applied and at most one
// waiting, so when a lane's batch commits the next one is already there. Order within a lane is the log's, and
// nothing is ever skipped: a failed batch is retried, not dropped, because kafkajs has already moved past it.
// Applying after a revocation is harmless: the position guard and the offset row lock of applyBatch make a
// batch another member applied meanwhile a no-op.
//
// A free slot goes to the waiting batch whose partition has the most left to apply (its batch and what the
// log holds behind it), not to the first come: the drain of a backlog ends when its longest partition does,
// and first come had started it last. Requests made in one turn of the event loop (the batches of one
// fetch) are weighed together.

import { rootCauseText } from "./message-fault.ts";

export interface LaneOptions {
  /** Batches applied at once, over all lanes. */
  readonly slots: number;
  readonly log: (line: string) => void;
  /** Delay before the first retry of a failed batch, doubled per failure up to `maxRetryMs`. */
  readonly retryMs?: number;
  readonly maxRetryMs?: number;
}

interface Lane<B> {
  waiting: B | undefined;
  /** Messages left in the partition from the waiting batch on (it included). */
  backlog: number;
  running: boolean;
  readonly room: (() => void)[];
}

interface SlotRequest {
  readonly backlog: number;
  readonly grant: () => void;
}

export class PartitionLanes<B> {
  private readonly lanes = new Map<string, Lane<B>>();
  private readonly slotQueue: SlotRequest[] = [];
  private freeSlots: number;
  private dispatching = false;
  private stopped = false;
  private readonly drained = new Set<() => void>();

  constructor(
    private readonly apply: (batch: B) => Promise<void>,
    private readonly opts: LaneOptions,
  ) {
    this.freeSlots = opts.slots;
  }

  /**
   * Queues `batch` behind the lane's current one; waits while the lane already has one waiting. `backlog`:
   * the messages left in the partition from this batch on, which decides who gets a free slot first.
   */
  async push(laneKey: string, batch: B, backlog = 0): Promise<void> {
    const lane = this.lane(laneKey);
    while (lane.waiting !== undefined && !this.stopped)
      await new Promise<void>((wake) => lane.room.push(wake));
    if (this.stopped) return;
    lane.waiting = batch;
    lane.backlog = backlog;
    if (!lane.running) void this.run(laneKey, lane);
  }

  /** Resolves once no lane has a batch running or waiting. */
  idle(): Promise<void> {
    if (this.isIdle()) return Promise.resolve();
    return new Promise((resolve) => this.drained.add(resolve));
  }

  /** Drops the waiting batches (nothing of them is stored, so a restart fetches them again) and lets the
   * running ones finish. */
  async stop(): Promise<void> {
    this.stopped = true;
    for (const lane of this.lanes.values()) {
      lane.waiting = undefined;
      for (const wake of lane.room.splice(0)) wake();
    }
    await this.idle();
  }

  private lane(key: string): Lane<B> {
    let lane = this.lanes.get(key);
    if (!lane) {
      lane = { waiting: undefined, backlog: 0, running: false, room: [] };
      this.lanes.set(key, lane);
    }
    return lane;
  }

  private async run(key: string, lane: Lane<B>): Promise<void> {
    lane.running = true;
    try {
      for (let batch = lane.waiting; batch !== undefined && !this.stopped; batch = lane.waiting) {
        const backlog = lane.backlog;
        lane.waiting = undefined;
        lane.room.shift()?.();
        await this.acquireSlot(backlog);
        try {
          await this.applyUntilDone(key, batch);
        } finally {
          this.releaseSlot();
        }
      }
    } finally {
      lane.running = false;
      if (this.isIdle()) {
        for (const resolve of this.drained) resolve();
        this.drained.clear();
      }
    }
  }

  private async applyUntilDone(key: string, batch: B): Promise<void> {
    let delay = this.opts.retryMs ?? 200;
    for (;;) {
      try {
        await this.apply(batch);
        return;
      } catch (e) {
        if (this.stopped) return;
        this.opts.log(`applying a batch of ${key} failed, retrying in ${delay} ms: ${rootCauseText(e)}`);
        await Bun.sleep(delay);
        delay = Math.min(delay * 2, this.opts.maxRetryMs ?? 5_000);
      }
    }
  }

  private acquireSlot(backlog: number): Promise<void> {
    return new Promise((grant) => {
      this.slotQueue.push({ backlog, grant });
      this.scheduleDispatch();
    });
  }

  private releaseSlot(): void {
    this.freeSlots++;
    this.scheduleDispatch();
  }

  /** On the next turn, so that the requests of this one are weighed together. */
  private scheduleDispatch(): void {
    if (this.dispatching) return;
    this.dispatching = true;
    setImmediate(() => {
      this.dispatching = false;
      while (this.freeSlots > 0 && this.slotQueue.length > 0) {
        let best = 0;
        for (let i = 1; i < this.slotQueue.length; i++)
          if (this.slotQueue[i]!.backlog > this.slotQueue[best]!.backlog) best = i;
        const [request] = this.slotQueue.splice(best, 1);
        this.freeSlots--;
        request!.grant();
      }
    });
  }

  private isIdle(): boolean {
    for (const lane of this.lanes.values()) if (lane.running || lane.waiting !== undefined) return false;
    return true;
  }
}
