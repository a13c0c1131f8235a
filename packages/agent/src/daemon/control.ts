// indigo.control.v1 → the engine's maps. A consumer of its own (a group id unique to this process, no
// commits) reads the compacted topic from the beginning, folds every message into ControlState and, when
// the effective control changes, compiles its rules (rules/compile.ts), writes them (Engine.writeRules: the
// inactive rule set, then the flip) and the per-class sampling rates. A control that does not compile is
// logged and counted and leaves the previous state in force; applied generation says what is in force.
// Such a message (under this agent's key or "*"; others are not even decoded) also goes to the DLQ with the
// reason, byte for byte: nothing is lost, since the compacted topic keeps it too, and an operator sees it
// without reading agent logs. Each agent that reads it sends its own copy (the agent id is a header), again
// after a restart (the topic is read from the beginning).
import { type Consumer, createKafka } from "@indigo/bus";
import type { EventClass } from "@indigo/proto";
import { type AgentControl, AgentControlSchema, fromBinary } from "@indigo/proto";
import { compileRules } from "../rules/compile.ts";
import { ControlState, releaseByDye, samplingRates, toRuleInput } from "./control-state.ts";

export interface ControlTarget {
  writeRules(slots: readonly Uint8Array[]): unknown;
  writeSampling(rates: ReadonlyMap<EventClass, number>): void;
}

/** A control message this agent could not use, where it was in the topic, and why. */
export interface DeadControl {
  readonly key: string;
  readonly value: Uint8Array | null;
  readonly partition: number;
  readonly offset: string;
  readonly error: string;
}

export interface ControlOptions {
  readonly agentId: string;
  readonly brokers: string[];
  readonly topic: string;
  readonly target: ControlTarget;
  readonly log?: (o: Record<string, unknown>) => void;
  /** Sends an unusable message to the DLQ; a failure is logged (the compacted topic still holds it). */
  readonly deadLetter?: (d: DeadControl) => Promise<void>;
}

export class ControlApplier {
  readonly #o: ControlOptions;
  readonly #state: ControlState;
  readonly #log: (o: Record<string, unknown>) => void;
  #consumer: Consumer | undefined;
  #stopped = false;
  #started = false;
  appliedGeneration = 0n;
  applied: AgentControl | undefined;
  releases = new Map<number, string>();
  sampling: ReadonlyMap<EventClass, number> = samplingRates(undefined);
  errors = 0;
  lastError = "";

  constructor(o: ControlOptions) {
    this.#o = o;
    this.#state = new ControlState(o.agentId);
    this.#log = o.log ?? (() => {});
  }

  /** The release id of the rule that gives `dye` now ("" for 0 or an unknown dye). */
  releaseOf(dye: number): string {
    return dye === 0 ? "" : (this.releases.get(dye) ?? "");
  }

  /**
   * Folds one message and applies the result when it changed what is in force. Returns why the message
   * could not be used (undecodable, or its rules do not compile), else undefined.
   */
  handle(key: string, value: Uint8Array | null): string | undefined {
    if (!this.#state.concerns(key)) return undefined;
    let msg: AgentControl | null = null;
    try {
      msg = value === null ? null : fromBinary(AgentControlSchema, value);
    } catch (e) {
      return this.#error(`undecodable control message under key ${key}: ${(e as Error).message}`);
    }
    this.#state.fold(key, msg);
    return this.apply(this.#state.effective);
  }

  apply(c: AgentControl | undefined): string | undefined {
    if (c === this.applied) return undefined;
    let slots: Uint8Array[];
    try {
      slots = compileRules((c?.rules ?? []).map(toRuleInput));
    } catch (e) {
      return this.#error(`control generation ${c?.generation ?? 0n} not applied: ${(e as Error).message}`);
    }
    const rates = samplingRates(c);
    this.#o.target.writeRules(slots);
    this.#o.target.writeSampling(rates);
    this.applied = c;
    this.sampling = rates;
    this.releases = releaseByDye(c);
    this.appliedGeneration = c?.generation ?? 0n;
    this.#log({
      control: "applied",
      generation: this.appliedGeneration.toString(),
      target: c?.target ?? "",
      rules: c?.rules.length ?? 0,
      sampling: Object.fromEntries(rates),
    });
    return undefined;
  }

  #error(message: string): string {
    this.errors++;
    this.lastError = message;
    this.#log({ control: "error", error: message });
    return message;
  }

  /** Starts consuming in the background; retries until the broker answers. */
  start(): void {
    if (this.#started) return;
    this.#started = true;
    void this.#startLoop();
  }

  async #startLoop(): Promise<void> {
    while (!this.#stopped) {
      const kafka = createKafka(`indigo-agent-control-${this.#o.agentId}`, {
        brokers: this.#o.brokers,
        quiet: true,
      });
      const consumer = kafka.consumer({
        groupId: `indigo-agent-control.${this.#o.agentId}.${process.pid}.${Date.now()}`,
        maxWaitTimeInMs: 200,
        sessionTimeout: 10_000,
        heartbeatInterval: 1000,
      });
      try {
        await consumer.connect();
        await consumer.subscribe({ topic: this.#o.topic, fromBeginning: true });
        await consumer.run({
          autoCommit: false,
          eachMessage: async ({ message, partition }) => {
            const key = message.key?.toString() ?? "";
            const value = message.value ? new Uint8Array(message.value) : null;
            const error = this.handle(key, value);
            if (error !== undefined && this.#o.deadLetter)
              await this.#o
                .deadLetter({ key, value, partition, offset: message.offset, error })
                .catch((e: Error) => this.#log({ control: "dlq-failed", error: e.message }));
          },
        });
        this.#consumer = consumer;
        if (this.#stopped) await consumer.disconnect().catch(() => {});
        return;
      } catch (e) {
        await consumer.disconnect().catch(() => {});
        this.lastError = `control consumer: ${(e as Error).message}`;
        await Bun.sleep(2000);
      }
    }
  }

  async stop(): Promise<void> {
    this.#stopped = true;
    await this.#consumer?.disconnect().catch(() => {});
  }
}
