// The dye engine, loaded: one sequence open → configure (pin paths) → load → write config → attach → drain,
// and one cleanup path (stop) that is safe to run from any point. Maps are pinned under pinDir and reused
// by the next start, so a restarted agent keeps the dye of live connections. Links are pinned under
// pinDir/links/ (one per program), so the programs stay attached when the agent dies (kill -9) and the
// next agent — a restart, or a new version during a hot upgrade (upgrade.ts) — takes them over: a cgroup
// link gets the new program in place (BPF_LINK_UPDATE), a tp_btf link (no update on this kernel) is
// replaced by a new link attached first, tc filters are replaced in place (BPF_TC_F_REPLACE). stop()
// detaches only what this process still owns: a link whose pin now runs another program, or a tc filter
// that now runs another program, belongs to the agent that took over, and only the fds are closed.

import { closeSync, existsSync, mkdirSync, rmdirSync, statSync } from "node:fs";
import { join } from "node:path";
import { bpfObjectPath } from "../bpf-objects.ts";
import { ensureBpffs } from "../bpffs.ts";
import { findCgroup2Root, openCgroupFd } from "../cgroup.ts";
import { type DyeEvent, DyeEventView } from "../events/decode-dye-event.ts";
import {
  type BpfLink,
  type BpfMap,
  BpfObject,
  ifindexOf,
  RingBuffer,
  TcAttachment,
  withNetns,
} from "../libbpf/index.ts";
import { LINK_TYPE_CGROUP, BpfLink as PinnedLink } from "../libbpf/link.ts";
import { type Adoption, adoptEstablished } from "./adopt.ts";
import { readCounters } from "./counter-names.ts";
import {
  type DyeConfig,
  decodeDyeConfig,
  defaultDyeConfig,
  dyeConfigKey,
  encodeDyeConfig,
} from "./dye-config.ts";
import { writeRuleSet } from "./rule-writer.ts";
import {
  type HookOutcome,
  holdersOf,
  linkPinPath,
  pinnedLinkIds,
  pinnedLinks,
  stopPrevious,
  type TakeoverReport,
  upgradeMode,
} from "./upgrade.ts";

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
  /**
   * Take over from an agent that runs the engine pinned under pinDir (hot upgrade): swap its attachments
   * to this process's programs, then SIGTERM it and wait until it is gone. Without it, start() refuses
   * to run next to a live agent. Default: `indigo-agent upgrade` (upgrade.ts) sets it.
   */
  takeover?: boolean;
  /** Told what happened to each hook when links were found pinned (upgrade or restart after a crash). */
  onTakeover?: (report: TakeoverReport) => void;
}

/** A link this process holds; `progId` is the program it put in it. */
interface HeldLink {
  name: string;
  link: BpfLink;
  progId: number;
}

const EINVAL = 22;
const EOPNOTSUPP = 95;

export class Engine {
  readonly #obj: BpfObject;
  readonly #links: HeldLink[] = [];
  readonly #tc: { tc: TcAttachment; progId: number }[] = [];
  readonly #hooks: Record<string, HookOutcome> = {};
  #overlapFrom: number | undefined;
  /** pins of links existed when this engine started (a previous agent ran, alive or killed) */
  #inherited = false;
  readonly #netnsPath: string | undefined;
  #ring: RingBuffer | undefined;
  #draining = false;
  readonly pinDir: string;
  readonly cgroupPath: string;
  /** maps that were already pinned and got reused at load */
  readonly reusedMaps: string[] = [];
  /** set when links were found pinned at start: what was taken over, from whom */
  takeover: TakeoverReport | undefined;
  /** the connections established before start that were taken in (engine/adopt.ts), or why not */
  adoption: Adoption | undefined;

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
    const takeover = opts.takeover ?? upgradeMode.active;
    const previous = holdersOf(pinnedLinkIds(join(pinDir, "links")));
    if (previous.length > 0 && !takeover) {
      throw new Error(
        `an agent (pid ${previous.join(", ")}) runs the engine pinned under ${pinDir}: stop it, or take over from it with \`indigo-agent upgrade\` (same flags as run)`,
      );
    }
    const obj = BpfObject.open(opts.objectPath ?? bpfObjectPath("indigo"));
    const engine = new Engine(obj, pinDir, cgroupPath, opts.netnsPath);
    try {
      engine.#load(opts);
      engine.#attach(opts.interfaces ?? []);
    } catch (e) {
      // A failed takeover must not detach what it already swapped: the pins keep it attached.
      engine.#teardown(engine.#inherited);
      throw e;
    }
    if (engine.#inherited) {
      const exited = previous.length > 0 ? stopPrevious(previous) : [];
      const overlapMs =
        engine.#overlapFrom === undefined
          ? 0
          : Math.round((performance.now() - engine.#overlapFrom) * 10) / 10;
      engine.takeover = {
        previousPids: previous,
        exited,
        hooks: { ...engine.#hooks },
        overlapMs,
        resumed: previous.length === 0,
      };
      (opts.onTakeover ?? upgradeMode.report)?.(engine.takeover);
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
    // A reused dye_config says which half of `rules` the running programs read: keep it, or the rules
    // of a live agent would switch to the other (stale or empty) half until this one writes its rules.
    const previous = existing.has("dye_config") ? this.map("dye_config").lookup(dyeConfigKey()) : undefined;
    const activeRuleSet = previous ? decodeDyeConfig(previous).activeRuleSet : 0;
    this.writeConfig({ ...defaultDyeConfig(), ...opts.config, activeRuleSet });
    // Reused sampling rates are the running agent's (set by control): kept as they are.
    if (existing.has("sampling")) return;
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
    mkdirSync(join(this.pinDir, "links"), { recursive: true });
    this.#inherited = pinnedLinks(join(this.pinDir, "links")).length > 0;
    const fd = openCgroupFd(this.cgroupPath);
    const cgroupId = BigInt(statSync(this.cgroupPath).ino);
    try {
      for (const name of ["handle_sock_ops", "handle_connect4", "handle_connect6"]) {
        const prog = this.#obj.program(name);
        this.#attachPinned(name, () => prog.attachCgroup(fd, this.cgroupPath), cgroupId);
      }
    } finally {
      closeSync(fd);
    }
    // After sock_ops: a connection established from now on gets its callbacks the usual way.
    this.adoption = adoptEstablished(this.#obj, this.cgroupPath, cgroupId);
    const recv = this.#obj.program("handle_sock_recv");
    this.#attachPinned("handle_sock_recv", () => recv.attach());
    this.#attachOptional("handle_tcp_sendmsg");
    const tcProg = this.#obj.program("handle_tc_egress");
    const tcFd = tcProg.fd;
    const progId = tcProg.id;
    withNetns(this.#netnsPath, () => {
      for (const iface of interfaces) {
        // Always BPF_TC_F_REPLACE at handle 1 / priority 1: a previous agent's filter (alive or killed)
        // is swapped in place, so there is never a moment without one, nor two.
        this.#tc.push({
          tc: TcAttachment.attach(tcFd, iface, ifindexOf(iface), "egress", 1, 1, true),
          progId,
        });
        this.#hooks[`tc:${iface}`] = this.#inherited ? "tc-replaced" : "attached";
      }
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
    this.#attachPinned(name, () => prog.attach());
  }

  /**
   * Attaches program `name` through a link pinned at <pinDir>/links/<name>. When a link is pinned there
   * already (a running agent's, or a killed one's), it is taken over: updated in place to this program
   * when the kernel allows it (cgroup links, same cgroup), else a new link is attached first and the old
   * one unpinned — it detaches when its last fd closes, i.e. when the old agent exits (tp_btf links:
   * BPF_LINK_UPDATE answers EINVAL and BPF_LINK_DETACH EOPNOTSUPP for them on 6.18).
   */
  #attachPinned(name: string, attachNew: () => BpfLink, cgroupId?: bigint): void {
    const prog = this.#obj.program(name);
    const held: Omit<HeldLink, "link"> = { name, progId: prog.id };
    const path = linkPinPath(this.pinDir, name);
    if (!existsSync(path)) {
      const link = attachNew();
      this.#links.push({ ...held, link });
      link.pin(path);
      this.#hooks[name] = "attached";
      return;
    }
    const old = PinnedLink.openPinned(path, `${name} (pinned)`);
    try {
      const info = old.info();
      const sameHook = cgroupId === undefined ? info.type !== LINK_TYPE_CGROUP : info.cgroupId === cgroupId;
      if (sameHook) {
        try {
          old.updateProgram(prog.fd, name);
          this.#links.push({ ...held, link: old });
          this.#hooks[name] = "updated";
          return;
        } catch (e) {
          const errno = (e as { errno?: number }).errno;
          if (errno !== EINVAL && errno !== EOPNOTSUPP) throw e;
        }
      }
      const link = attachNew();
      this.#links.push({ ...held, link });
      this.#overlapFrom ??= performance.now();
      old.unpin();
      link.pin(path);
      this.#hooks[name] = "replaced";
    } finally {
      // closes this process's fd of the old link (a no-op for the one kept after an update)
      if (!this.#links.some((h) => h.link === old)) old.destroy();
    }
  }

  map(name: string): BpfMap {
    return this.#obj.map(name);
  }

  /** Program names and ids of what is attached, for tests and status. */
  get attachedPrograms(): number {
    return this.#links.length + this.#tc.length;
  }

  /** Per hook, what start() did with its attachment (attached fresh, updated, replaced). */
  get hooks(): Readonly<Record<string, HookOutcome>> {
    return this.#hooks;
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
   * Drains the ring buffer until stop(): one event per callback, a DyeEventView over its own copy of the
   * record (fields decoded when read; safe to keep). Undecodable records go to `onError` and the drain
   * goes on. stop() drains what is left before it returns.
   */
  drain(onEvent: (e: DyeEvent) => void, onError: (e: unknown) => void = () => {}): Promise<void> {
    if (this.#draining) throw new Error("engine is already draining its ring buffer");
    this.#ring = new RingBuffer(this.map("events").fd, (bytes) => {
      try {
        onEvent(new DyeEventView(bytes));
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

  /**
   * `keepPinned`: close fds only (a failed takeover). Otherwise a link is detached (unpinned, then closed)
   * only while this process still owns it: the pin at its path is this very link and runs this process's
   * program. A link another agent took over is only closed (an updated one stays attached through its pin;
   * a replaced one, already unpinned, detaches now). The same for tc: detached only if it runs our program.
   */
  #teardown(keepPinned = false): void {
    const errors: unknown[] = [];
    const attempt = (step: () => void) => {
      try {
        step();
      } catch (e) {
        errors.push(e);
      }
    };
    withNetns(this.#netnsPath, () => {
      for (const { tc, progId } of this.#tc.splice(0)) {
        attempt(() => (!keepPinned && tc.attachedProgId() === progId ? tc.detach() : tc.forget()));
      }
    });
    for (const held of this.#links.splice(0)) {
      attempt(() => {
        try {
          if (!keepPinned && held.link.pinPath && this.#owns(held)) held.link.unpin();
        } finally {
          held.link.destroy();
        }
      });
    }
    if (!keepPinned) {
      try {
        rmdirSync(join(this.pinDir, "links")); // only when empty: another agent's pins stay
      } catch {
        // not empty, or gone
      }
    }
    attempt(() => this.#obj.close());
    if (errors.length > 0) throw new AggregateError(errors, "failed to detach the dye engine cleanly");
  }

  #owns(held: HeldLink): boolean {
    const info = held.link.info();
    if (info.progId !== held.progId) return false; // updated in place by another agent
    const path = held.link.pinPath;
    if (!path || !existsSync(path)) return false;
    return pinnedLinkIds(join(this.pinDir, "links")).includes(info.id); // replaced: the pin is another link
  }
}
