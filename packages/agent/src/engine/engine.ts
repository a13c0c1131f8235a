// The dye engine, loaded: one sequence open → configure (pin paths) → load → write config → attach → drain,
// and one cleanup path (stop) that is safe to run from any point. Maps are pinned under pinDir and reused
// by the next start, so a restarted agent keeps the dye of live connections; programs are attached
// through bpf_links (and tc filters) that this process owns and removes on stop.
import { closeSync, existsSync, mkdirSync } from "node:fs";
import { join } from "node:path";
import { bpfObjectPath } from "../bpf-objects.ts";
import { ensureBpffs } from "../bpffs.ts";
import { findCgroup2Root, openCgroupFd } from "../cgroup.ts";
import { type DyeEvent, decodeDyeEvent } from "../events/decode-dye-event.ts";
import {
  type BpfLink,
  type BpfMap,
  BpfObject,
  ifindexOf,
  RingBuffer,
  TcAttachment,
  withNetns,
} from "../libbpf/index.ts";
import { readCounters } from "./counter-names.ts";
import { type DyeConfig, defaultDyeConfig, dyeConfigKey, encodeDyeConfig } from "./dye-config.ts";
import { writeRuleSet } from "./rule-writer.ts";

/** Maps pinned (and reused) under pinDir. */
export const PINNED_MAPS = [
  "dye_config",
  "rules",
  "sampling",
  "sock_state",
  "thread_state",
  "events",
  "counters",
  "recv_mark",
] as const;

export const DEFAULT_PIN_DIR = "indigo"; // under the bpffs mount: /sys/fs/bpf/indigo
const SAMPLING_CLASSES = 4;
const SAMPLING_SCALE = 1_000_000;
/**
 * The drain loop's wait: the engine's programs wake the consumer only when EVENTS_WAKE_BYTES are unread
 * (bpf/lib/emit.bpf.h), so this bounds how long an event waits in the ring buffer.
 */
export const EVENTS_DRAIN_MS = 10;

export interface EngineOptions {
  /** default: <repo>/bpf/build/indigo.bpf.o */
  objectPath?: string;
  /** default: <bpffs>/indigo */
  pinDir?: string;
  /** cgroup-v2 directory for sock_ops and connect4/6; default: the cgroup-v2 root */
  cgroupPath?: string;
  /** interfaces for tc egress */
  interfaces?: string[];
  /** a /run/netns/<name> path the interfaces live in (default: this process's netns) */
  netnsPath?: string;
  config?: Partial<DyeConfig>;
}

export class Engine {
  readonly #obj: BpfObject;
  readonly #links: BpfLink[] = [];
  readonly #tc: TcAttachment[] = [];
  readonly #netnsPath: string | undefined;
  #ring: RingBuffer | undefined;
  #draining = false;
  readonly pinDir: string;
  readonly cgroupPath: string;
  /** maps that were already pinned and got reused at load */
  readonly reusedMaps: string[] = [];

  private constructor(obj: BpfObject, pinDir: string, cgroupPath: string, netnsPath?: string) {
    this.#obj = obj;
    this.pinDir = pinDir;
    this.cgroupPath = cgroupPath;
    this.#netnsPath = netnsPath;
  }

  static start(opts: EngineOptions = {}): Engine {
    const pinDir = opts.pinDir ?? join(ensureBpffs(), DEFAULT_PIN_DIR);
    const cgroupPath = opts.cgroupPath ?? findCgroup2Root();
    if (!cgroupPath) throw new Error("failed to find the cgroup-v2 mount: none in /proc/mounts");
    const obj = BpfObject.open(opts.objectPath ?? bpfObjectPath("indigo"));
    const engine = new Engine(obj, pinDir, cgroupPath, opts.netnsPath);
    try {
      engine.#load(opts);
      engine.#attach(opts.interfaces ?? []);
    } catch (e) {
      engine.#teardown();
      throw e;
    }
    return engine;
  }

  #load(opts: EngineOptions): void {
    mkdirSync(this.pinDir, { recursive: true });
    const existing = new Set<string>();
    for (const name of PINNED_MAPS) {
      const map = this.#obj.map(name);
      if (existsSync(join(this.pinDir, name))) existing.add(name);
      map.setPinPath(join(this.pinDir, name));
    }
    this.#obj.load();
    this.reusedMaps.push(...PINNED_MAPS.filter((n) => existing.has(n)));
    this.writeConfig({ ...defaultDyeConfig(), ...opts.config });
    const sampling = this.map("sampling");
    for (let c = 0; c < SAMPLING_CLASSES; c++) {
      const key = new Uint8Array(4);
      new DataView(key.buffer).setUint32(0, c, true);
      const rate = new Uint8Array(4);
      new DataView(rate.buffer).setUint32(0, SAMPLING_SCALE, true);
      sampling.update(key, rate);
    }
  }

  #attach(interfaces: string[]): void {
    const fd = openCgroupFd(this.cgroupPath);
    try {
      for (const name of ["handle_sock_ops", "handle_connect4", "handle_connect6"]) {
        this.#links.push(this.#obj.program(name).attachCgroup(fd, this.cgroupPath));
      }
    } finally {
      closeSync(fd);
    }
    this.#links.push(this.#obj.program("handle_sock_recv").attach());
    this.#attachOptional("handle_tcp_sendmsg");
    const tcFd = this.#obj.program("handle_tc_egress").fd;
    withNetns(this.#netnsPath, () => {
      for (const iface of interfaces) this.#tc.push(TcAttachment.attach(tcFd, iface, ifindexOf(iface)));
    });
  }

  // The payload path (dye_send.bpf.c) is another unit; attach its tp_btf program when it is linked in.
  #attachOptional(name: string): void {
    let prog: ReturnType<BpfObject["program"]>;
    try {
      prog = this.#obj.program(name);
    } catch {
      return;
    }
    this.#links.push(prog.attach());
  }

  map(name: string): BpfMap {
    return this.#obj.map(name);
  }

  /** Program names and ids of what is attached, for tests and status. */
  get attachedPrograms(): number {
    return this.#links.length + this.#tc.length;
  }

  writeConfig(config: DyeConfig): void {
    this.map("dye_config").update(dyeConfigKey(), encodeDyeConfig(config));
  }

  /** Encoded struct dye_rule slots (rules/compile.ts); flips the active rule set. */
  writeRules(slots: readonly Uint8Array[]): 0 | 1 {
    return writeRuleSet(this.map("rules"), this.map("dye_config"), slots);
  }

  counters(): Record<string, bigint> {
    return readCounters(this.map("counters"));
  }

  /**
   * Drains the ring buffer until stop(): one decoded event per callback. Undecodable records go to
   * `onError` and the drain goes on.
   */
  drain(onEvent: (e: DyeEvent) => void, onError: (e: unknown) => void = () => {}): Promise<void> {
    if (this.#draining) throw new Error("engine is already draining its ring buffer");
    this.#ring = new RingBuffer(this.map("events").fd, (bytes) => {
      try {
        onEvent(decodeDyeEvent(bytes));
      } catch (e) {
        onError(e);
      }
    });
    this.#draining = true;
    const ring = this.#ring;
    return (async () => {
      while (this.#draining) await ring.poll(EVENTS_DRAIN_MS);
      ring.consume();
    })();
  }

  /** Detaches everything this process attached and closes the object; pinned maps stay. Idempotent. */
  async stop(): Promise<void> {
    this.#draining = false;
    await this.#ring?.close();
    this.#ring = undefined;
    this.#teardown();
  }

  #teardown(): void {
    const errors: unknown[] = [];
    const attempt = (step: () => void) => {
      try {
        step();
      } catch (e) {
        errors.push(e);
      }
    };
    withNetns(this.#netnsPath, () => {
      for (const tc of this.#tc.splice(0)) attempt(() => tc.detach());
    });
    for (const link of this.#links.splice(0)) attempt(() => link.destroy());
    attempt(() => this.#obj.close());
    if (errors.length > 0) throw new AggregateError(errors, "failed to detach the dye engine cleanly");
  }
}
