// Builders for the events projector tests produce: short to write, complete on the wire.
import {
  create,
  DetectionSource,
  Direction,
  DyeEventBatchSchema,
  DyeEventKind,
  DyeEventSchema,
  ReleaseEventSchema,
  toBinary,
} from "@indigo/proto";

export const BOOT_NS = 1_767_225_600_000_000_000n; // 2026-01-01T00:00:00Z

export interface Ev {
  seq: number;
  atMs: number; // since BOOT
  kind?: "request" | "response";
  direction?: "egress" | "ingress";
  /** 4 bytes (IPv4) or 16 (IPv6) */
  saddr?: readonly number[];
  daddr?: readonly number[];
  pid?: number;
  tid?: number;
  cookie?: bigint;
  dye?: number;
  releaseId?: string;
  source?: DetectionSource;
  comm: string;
  sport: number;
  dport: number;
  traceId?: string;
  status?: number;
}

export function dyeBatch(agentId: string, events: Ev[]): Buffer {
  return Buffer.from(
    toBinary(
      DyeEventBatchSchema,
      create(DyeEventBatchSchema, {
        agentId,
        node: `node-${agentId}`,
        bootTimeUnixNano: BOOT_NS,
        events: events.map((e) =>
          create(DyeEventSchema, {
            seq: BigInt(e.seq),
            tsNs: BigInt(e.atMs) * 1_000_000n,
            kind: e.kind === "response" ? DyeEventKind.RESPONSE : DyeEventKind.REQUEST,
            dye: e.dye ?? 0,
            releaseId: e.releaseId ?? "",
            source: e.source ?? DetectionSource.UNSPECIFIED,
            direction: e.direction === "ingress" ? Direction.INGRESS : Direction.EGRESS,
            pid: e.pid ?? 0,
            tid: e.tid ?? 0,
            socketCookie: e.cookie ?? 0n,
            comm: e.comm,
            saddr: new Uint8Array(e.saddr ?? [10, 0, 0, 1]),
            sport: e.sport,
            daddr: new Uint8Array(e.daddr ?? [10, 0, 0, 2]),
            dport: e.dport,
            traceId: e.traceId ?? "",
            status: e.status ?? 0,
          }),
        ),
      }),
    ),
  );
}

export function releaseCreated(releaseId: string, dye: number, atMs: number): Buffer {
  return Buffer.from(
    toBinary(
      ReleaseEventSchema,
      create(ReleaseEventSchema, {
        releaseId,
        version: 1n,
        actor: "test",
        timeUnixNano: BOOT_NS + BigInt(atMs) * 1_000_000n,
        kind: {
          case: "created",
          value: {
            name: `release ${releaseId}`,
            dye,
            cohort: { match: { case: "traceIdPattern", value: "^T" } },
            services: [],
          },
        },
      }),
    ),
  );
}

export function releaseStarted(releaseId: string, atMs: number): Buffer {
  return Buffer.from(
    toBinary(
      ReleaseEventSchema,
      create(ReleaseEventSchema, {
        releaseId,
        version: 2n,
        actor: "test",
        timeUnixNano: BOOT_NS + BigInt(atMs) * 1_000_000n,
        kind: { case: "started", value: {} },
      }),
    ),
  );
}
