// The fast decoder against the reference one: the same values for what agents send (including uint64s past
// 2^53, non-ASCII strings, unknown fields), the same refusal for what the reference refuses.
import { expect, test } from "bun:test";
import {
  create,
  DetectionSource,
  Direction,
  DyeEventBatchSchema,
  DyeEventKind,
  DyeEventSchema,
  fromBinary,
  toBinary,
} from "@indigo/proto";
import { type DyeBatchView, decodeDyeBatch, decodeDyeEvent, encodedEvent } from "./dye-batch.ts";

function reference(bytes: Uint8Array): unknown {
  const { $typeName: _, ...batch } = fromBinary(DyeEventBatchSchema, bytes);
  return { ...batch, events: batch.events.map(({ $typeName: _t, ...e }) => e) };
}

/** The batch without where its events' bytes are (which the reference decoder does not say). */
function values(batch: DyeBatchView): unknown {
  const { spans: _, bytes: __, ...rest } = batch;
  return rest;
}

/** The reference decoder's error message for input it refuses (a test of refusal needs one). */
function refusal(parse: () => unknown): string {
  try {
    parse();
  } catch (error) {
    const message = (error as Error).message;
    expect(message).not.toBe("");
    return message;
  }
  throw new Error("the reference decoder accepted it");
}

const U64_MAX = 2n ** 64n - 1n;

function sample(): Uint8Array {
  return toBinary(
    DyeEventBatchSchema,
    create(DyeEventBatchSchema, {
      agentId: "agent-ü",
      node: "node-1",
      bootTimeUnixNano: 1_767_225_600_000_000_123n,
      producedUnixNano: U64_MAX,
      events: [
        create(DyeEventSchema, {
          seq: 1n,
          tsNs: 2n ** 53n + 7n,
          kind: DyeEventKind.RESPONSE,
          dye: 4_000_000_000,
          source: DetectionSource.FALLBACK,
          direction: Direction.INGRESS,
          pid: 4_294_967_295,
          tid: 12,
          comm: "café",
          cgroupId: U64_MAX,
          saddr: new Uint8Array([10, 0, 0, 1]),
          sport: 65535,
          daddr: new Uint8Array(16).fill(0xfe),
          dport: 443,
          socketCookie: 2n ** 63n,
          traceId: "T-1",
          method: "GET",
          path: "/ü/✓",
          status: 503,
          releaseId: "r1",
        }),
        create(DyeEventSchema, { seq: 2n, comm: "x" }),
        create(DyeEventSchema, {}),
      ],
    }),
  );
}

test("decodes what the reference decodes, to the same values", () => {
  const bytes = sample();
  expect(values(decodeDyeBatch(bytes))).toEqual(reference(bytes));
  expect(values(decodeDyeBatch(new Uint8Array()))).toEqual(reference(new Uint8Array()));
});

test("unknown fields are skipped like the reference skips them", () => {
  // field 99 varint, field 98 length-delimited, field 97 fixed32, field 96 fixed64, then the sample
  const extra = [0x98, 0x06, 0x05, 0x92, 0x06, 0x02, 0x41, 0x42, 0x8d, 0x06, 1, 2, 3, 4];
  extra.push(0x81, 0x06, 1, 2, 3, 4, 5, 6, 7, 8);
  const bytes = new Uint8Array([...extra, ...sample()]);
  const { $unknown: _, ...expected } = reference(bytes) as { $unknown?: unknown };
  expect(values(decodeDyeBatch(bytes))).toEqual(expected);
});

test("refuses what the reference refuses, with its error", () => {
  const bytes = sample();
  const truncated = bytes.subarray(0, bytes.length - 3);
  const badUtf8 = new Uint8Array([0x0a, 0x02, 0xc3, 0x28]); // agent_id = invalid UTF-8
  const badWire = new Uint8Array([0x0f]); // field 1, wire type 7
  for (const input of [truncated, badUtf8, badWire]) {
    const want = refusal(() => fromBinary(DyeEventBatchSchema, input));
    expect(() => decodeDyeBatch(input)).toThrow(want);
  }
});

test("each event's own bytes decode to the event, from the fast path and from the reference's batch", () => {
  const bytes = sample();
  const fast = decodeDyeBatch(bytes);
  const { $typeName: _, ...slow } = fromBinary(DyeEventBatchSchema, bytes);
  const want = (reference(bytes) as { events: unknown[] }).events;
  for (const batch of [fast, slow]) {
    const events = batch.events.map((_e, i) => {
      const { $typeName: _t, ...e } = decodeDyeEvent(encodedEvent(batch, i)) as { $typeName?: string };
      return e;
    });
    expect(events).toEqual(want as never);
  }
  // The fast path hands out the agent's own encoding, not a re-encoding.
  expect(encodedEvent(fast, 1).buffer).toBe(bytes.buffer);
});

test("a single event is refused like the reference refuses it", () => {
  const badUtf8 = new Uint8Array([0x4a, 0x02, 0xc3, 0x28]); // comm = invalid UTF-8
  const want = refusal(() => fromBinary(DyeEventSchema, badUtf8));
  expect(() => decodeDyeEvent(badUtf8)).toThrow(want);
});
