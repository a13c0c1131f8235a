// Every table here is a projection of the Kafka log (DESIGN.md "Event sourcing"): it can be dropped and
// rebuilt by replaying the topics. `consumer_offsets` is the checkpoint stored with the projections it guards.
// The exceptions are `api_tokens` (the API's credentials, which are not events and live only here) and
// `ramp_holds` (what the API's analysis last found holding a ramp).
import { sql } from "drizzle-orm";
import {
  bigint,
  bigserial,
  customType,
  index,
  integer,
  jsonb,
  pgTable,
  primaryKey,
  text,
  timestamp,
  uniqueIndex,
} from "drizzle-orm/pg-core";

export const consumerOffsets = pgTable(
  "consumer_offsets",
  {
    consumerGroup: text("consumer_group").notNull(),
    topic: text("topic").notNull(),
    partition: integer("partition").notNull(),
    // The next offset to read: the last applied offset + 1.
    nextOffset: bigint("next_offset", { mode: "bigint" }).notNull(),
    updatedAt: timestamp("updated_at", { withTimezone: true }).notNull().defaultNow(),
  },
  (t) => [primaryKey({ columns: [t.consumerGroup, t.topic, t.partition] })],
);

export const releases = pgTable("releases", {
  id: text("id").primaryKey(),
  name: text("name").notNull(),
  state: text("state").notNull(),
  version: integer("version").notNull(),
  dye: integer("dye").notNull(),
  cohort: jsonb("cohort").notNull(),
  services: jsonb("services").notNull(),
  ramp: jsonb("ramp").notNull().default(sql`'[]'::jsonb`),
  analysis: jsonb("analysis"),
  rampStep: integer("ramp_step").notNull().default(0),
  stateReason: text("state_reason").notNull().default(""),
  createdAt: timestamp("created_at", { withTimezone: true }).notNull(),
  updatedAt: timestamp("updated_at", { withTimezone: true }).notNull(),
});

export const agents = pgTable("agents", {
  agentId: text("agent_id").primaryKey(),
  node: text("node").notNull(),
  mode: text("mode").notNull(),
  degradedReason: text("degraded_reason").notNull().default(""),
  kernelVersion: text("kernel_version").notNull().default(""),
  lastSeq: bigint("last_seq", { mode: "bigint" }).notNull().default(sql`0`),
  status: jsonb("status").notNull(),
  lastSeenAt: timestamp("last_seen_at", { withTimezone: true }).notNull(),
  // Two agents reporting under one id (a cloned hostname, a templated --agent-id): what showed it, and when.
  // Their events collide on (agent_id, seq), and the later one's are skipped as duplicates.
  idConflict: text("id_conflict").notNull().default(""),
  idConflictAt: timestamp("id_conflict_at", { withTimezone: true }),
});

// Every release event, in aggregate order: the release's audit history (who, what, when).
export const releaseEvents = pgTable(
  "release_events",
  {
    releaseId: text("release_id").notNull(),
    version: integer("version").notNull(),
    kind: text("kind").notNull(),
    actor: text("actor").notNull(),
    at: timestamp("at", { withTimezone: true }).notNull(),
    data: jsonb("data").notNull(),
  },
  (t) => [primaryKey({ columns: [t.releaseId, t.version] })],
);

// Requests per release × hop × time bucket × detection source: how many should have carried the dye there
// (expected) and how many did (dyed), plus gray responses and their errors (5xx) for the analysis.
export const coverage = pgTable(
  "coverage",
  {
    releaseId: text("release_id").notNull(),
    caller: text("caller").notNull(),
    callee: text("callee").notNull(),
    bucketStart: timestamp("bucket_start", { withTimezone: true }).notNull(),
    source: text("source").notNull(),
    expected: bigint("expected", { mode: "number" }).notNull().default(0),
    dyed: bigint("dyed", { mode: "number" }).notNull().default(0),
    responses: bigint("responses", { mode: "number" }).notNull().default(0),
    errors: bigint("errors", { mode: "number" }).notNull().default(0),
  },
  (t) => [
    primaryKey({ columns: [t.releaseId, t.caller, t.callee, t.bucketStart, t.source] }),
    // Time windows of one release ("the last 5 minutes") read a range of this index, not the whole release.
    index("coverage_release_bucket_idx").on(t.releaseId, t.bucketStart),
  ],
);

// The same counts summed over all time, per release × hop × source: what "coverage since the release began"
// reads without summing a day of buckets.
export const coverageTotals = pgTable(
  "coverage_totals",
  {
    releaseId: text("release_id").notNull(),
    caller: text("caller").notNull(),
    callee: text("callee").notNull(),
    source: text("source").notNull(),
    expected: bigint("expected", { mode: "number" }).notNull().default(0),
    dyed: bigint("dyed", { mode: "number" }).notNull().default(0),
    responses: bigint("responses", { mode: "number" }).notNull().default(0),
    errors: bigint("errors", { mode: "number" }).notNull().default(0),
  },
  (t) => [primaryKey({ columns: [t.releaseId, t.caller, t.callee, t.source] })],
);

// Traces that entered a release's cohort: a trace id first seen dyed with the release's dye.
export const cohortTraces = pgTable(
  "cohort_traces",
  {
    traceId: text("trace_id").primaryKey(),
    releaseId: text("release_id").notNull(),
    dye: integer("dye").notNull(),
    // The trace's earliest dyed event: moved back when one from before it is folded later.
    enteredAt: timestamp("entered_at", { withTimezone: true }).notNull(),
    // Commit order: entries are written only under the projector's dye lock, each writer committing before
    // the next takes it, so the committed positions are always a prefix. A fold that read the cohort at
    // position P finds everything that entered since with `position > P`.
    position: bigserial("position", { mode: "bigint" }).notNull(),
  },
  // BRIN on the entry time: the retention's sweep (entries arrive roughly in time order).
  (t) => [
    index("cohort_traces_position_idx").on(t.position),
    index("cohort_traces_entered_at_idx").using("brin", t.enteredAt),
  ],
);

const bytea = customType<{ data: Buffer; driverData: Buffer }>({ dataType: () => "bytea" });

// Undyed hop requests whose trace is not (yet) known to be in a cohort: if the trace enters a cohort
// later in the log, they become misses. Makes coverage independent of the order events arrive in.
// Most of the traffic lands here, so a row holds only what that later attribution and the timeline read.
export const undyedHopRequests = pgTable(
  "undyed_hop_requests",
  {
    traceId: text("trace_id").notNull(),
    caller: text("caller").notNull(),
    callee: text("callee").notNull(),
    bucketStart: timestamp("bucket_start", { withTimezone: true }).notNull(),
    // The request's own event (the DyeEvent as its agent encoded it) with what places it in time (the agent
    // and its boot time): when the trace enters a cohort later, this hop joins the trace's timeline exactly as
    // if it had been folded after the entry. Null in rows stored before migration 0009 (no timeline row).
    agentId: text("agent_id"),
    bootNs: bigint("boot_ns", { mode: "bigint" }),
    event: bytea("event"),
    // Written before migration 0006 only, null since (a null costs no bytes): kept so a projector of an
    // earlier release still runs against this schema during an upgrade. Drop in a later migration.
    seq: bigint("seq", { mode: "bigint" }),
  },
  // No unique key: the per-agent sequence guard applies each event once. The one reader looks rows up by
  // trace id with equality only, which a hash index serves at a lower insert cost than a b-tree on text;
  // the BRIN index (rows arrive roughly in time order) lets the retention find old rows without a scan.
  (t) => [
    index("undyed_hop_requests_trace_idx").using("hash", t.traceId),
    index("undyed_hop_requests_bucket_idx").using("brin", t.bucketStart),
  ],
);

// Every hop and layer a dyed trace was seen at, with kernel timestamps: the audit view of one request.
export const traceHops = pgTable(
  "trace_hops",
  {
    // "" for a dyed event that carries no trace id (an inherited hop): the timeline reaches it through the
    // connection (local/peer) and the thread (pid/tid) of the request it served.
    traceId: text("trace_id").notNull(),
    agentId: text("agent_id").notNull(),
    seq: bigint("seq", { mode: "bigint" }).notNull(),
    at: timestamp("at", { withTimezone: true }).notNull(),
    tsNs: bigint("ts_ns", { mode: "bigint" }).notNull(),
    service: text("service").notNull(),
    local: text("local").notNull().default(""),
    peer: text("peer").notNull(),
    cookie: bigint("cookie", { mode: "bigint" }).notNull().default(sql`0`),
    pid: integer("pid").notNull().default(0),
    tid: integer("tid").notNull().default(0),
    kind: text("kind").notNull(),
    direction: text("direction").notNull(),
    dye: integer("dye").notNull(),
    source: text("source").notNull(),
    method: text("method").notNull(),
    path: text("path").notNull(),
    status: integer("status").notNull(),
  },
  // No unique key: the per-agent sequence guard applies each event once. Every index serves one step of the
  // timeline walk (packages/api/src/trace-timeline.ts) and holds only the rows that step reads, so a row pays
  // for one to three of them; the walk's queries spell the same predicates as literals, which is what lets
  // the planner use a partial index. Trace ids by hash (equality only, cheaper to insert into than a b-tree
  // on text), without the inherited hops' "" (one hash bucket holding them all would be walked per insert).
  (t) => [
    index("trace_hops_trace_idx").using("hash", t.traceId).where(sql`${t.traceId} <> ''`),
    // By the caller's end only: behind a virtual IP the callee's local end is not the caller's peer.
    index("trace_hops_callee_request_idx")
      .on(t.peer, t.at)
      .where(sql`${t.direction} = 'ingress' and ${t.kind} = 'request'`),
    index("trace_hops_response_idx")
      .on(t.local, t.peer, t.at)
      .where(sql`${t.direction} = 'egress' and ${t.kind} = 'response'`),
    index("trace_hops_thread_request_idx")
      .on(t.agentId, t.pid, t.tid, t.at)
      .where(sql`${t.direction} = 'ingress' and ${t.kind} = 'request'`),
    index("trace_hops_thread_egress_idx")
      .on(t.agentId, t.pid, t.tid, t.at)
      .where(sql`${t.direction} = 'egress'`),
    // The retention's sweep (rows arrive roughly in time order).
    index("trace_hops_at_idx").using("brin", t.at),
  ],
);

// Sequence numbers applied per agent, as closed ranges: duplicates are skipped, gaps are the holes.
export const agentSeqRanges = pgTable(
  "agent_seq_ranges",
  {
    agentId: text("agent_id").notNull(),
    lo: bigint("lo", { mode: "bigint" }).notNull(),
    hi: bigint("hi", { mode: "bigint" }).notNull(),
  },
  (t) => [primaryKey({ columns: [t.agentId, t.lo] })],
);

// Counters of the projector itself (DLQ'd messages, duplicates skipped, …), per consumer group.
export const projectorCounters = pgTable(
  "projector_counters",
  {
    consumerGroup: text("consumer_group").notNull(),
    name: text("name").notNull(),
    value: bigint("value", { mode: "number" }).notNull().default(0),
  },
  (t) => [primaryKey({ columns: [t.consumerGroup, t.name] })],
);

// Per agent: events applied and duplicates skipped. Gaps are derived: highest applied seq − events applied.
export const agentDelivery = pgTable("agent_delivery", {
  agentId: text("agent_id").primaryKey(),
  events: bigint("events", { mode: "number" }).notNull().default(0),
  duplicates: bigint("duplicates", { mode: "number" }).notNull().default(0),
  maxSeq: bigint("max_seq", { mode: "bigint" }).notNull().default(sql`0`),
});

// API bearer tokens (not a projection): only the SHA-256 of a token is stored; `name` is the actor that
// commands made with it record in ReleaseEvent.actor. Roles: viewer (reads), operator (+ commands), admin (all).
export const apiTokens = pgTable(
  "api_tokens",
  {
    id: text("id").primaryKey(),
    name: text("name").notNull(),
    role: text("role").notNull(),
    sha256: text("sha256").notNull(),
    createdAt: timestamp("created_at", { withTimezone: true }).notNull().defaultNow(),
    revokedAt: timestamp("revoked_at", { withTimezone: true }),
  },
  (t) => [uniqueIndex("api_tokens_sha256").on(t.sha256)],
);

// Ramps the analysis holds (not a projection: the API's analysis writes it every pass, and a rebuild leaves
// it): a ramp that does not move is either waiting for its due time or held, and the operator needs to know
// which and why without reading the log of the API instance that runs the analysis. `kind` is "traffic" (no
// hop had minRequests cohort requests in the window) or "evidence" (the window may lack events); `since` is
// when a hold of that kind began, `checked_at` the pass that last found it (an old one: no pass runs).
export const rampHolds = pgTable("ramp_holds", {
  releaseId: text("release_id").primaryKey(),
  kind: text("kind").notNull(),
  reason: text("reason").notNull(),
  since: timestamp("since", { withTimezone: true }).notNull(),
  checkedAt: timestamp("checked_at", { withTimezone: true }).notNull(),
});
