// A dyed trace's path, end to end. The kernel sees a trace id only where it travels in the bytes; past a
// service that forwards nothing, the hops are dyed (inherited) but anonymous. They are found by walking:
//   a request leaving a caller (local L → peer P)  →  the callee's ingress request on the same connection
//   (peer L; its local is P unless P was a virtual IP), nearest in time  →  the requests that same thread
//   (agent, pid, tid) sent before it read its next request  →  … and so on, plus each callee's response on
//   that connection.
// A heuristic on thread-per-request services; runtimes that hand a request to another thread end the walk
// at that hop (the hops with the trace id in their bytes are always there).
import { type Database, schema } from "@indigo/db";
import { and, asc, eq, gt, gte, lte, sql } from "drizzle-orm";

type Hop = typeof schema.traceHops.$inferSelect;

const CLOCK_SKEW_MS = 2_000; // nodes' clocks and queueing: how far apart a request's two ends may be seen
const INHERIT_MS = 2_000; // the engine's default inherit window
const MAX_HOPS = 200;

const key = (h: Hop) => `${h.agentId}\u0000${h.seq}`;
const t = schema.traceHops;

// The partial indexes' predicates (schema.ts), as literals: a bound parameter would not let the planner use
// them. Each step's query carries exactly one.
const INGRESS_REQUEST = sql`${t.direction} = 'ingress' and ${t.kind} = 'request'`;
const EGRESS_RESPONSE = sql`${t.direction} = 'egress' and ${t.kind} = 'response'`;
const EGRESS = sql`${t.direction} = 'egress'`;
const HAS_TRACE_ID = sql`${t.traceId} <> ''`;
const shift = (at: Date, ms: number) => new Date(at.getTime() + ms);

/**
 * Joined by the caller's end only — its address and ephemeral port, which reach the callee unchanged unless
 * something on the way rewrites the source (SNAT). The other end may not match: behind a virtual IP (a
 * Kubernetes Service, any DNAT) the caller's socket names the VIP as its peer and the callee's names
 * itself. Where both ends match (no NAT) that ingress goes first: a source port may be in use towards two
 * destinations at once.
 */
async function calleeIngress(db: Database, request: Hop): Promise<Hop | undefined> {
  const [hop] = await db
    .select()
    .from(t)
    .where(
      and(
        eq(t.peer, request.local),
        INGRESS_REQUEST,
        gte(t.at, shift(request.at, -CLOCK_SKEW_MS)),
        lte(t.at, shift(request.at, CLOCK_SKEW_MS)),
      ),
    )
    .orderBy(
      sql`${t.local} <> ${request.peer}`,
      sql`abs(extract(epoch from ${t.at} - ${request.at.toISOString()}::timestamptz))`,
    )
    .limit(1);
  return hop;
}

/** What the thread that read `ingress` did for it: its egress until it read its next request (or the window ended). */
async function sameThread(db: Database, ingress: Hop): Promise<Hop[]> {
  const thread = and(eq(t.agentId, ingress.agentId), eq(t.pid, ingress.pid), eq(t.tid, ingress.tid));
  const [next] = await db
    .select({ at: t.at })
    .from(t)
    .where(and(thread, INGRESS_REQUEST, gt(t.at, ingress.at)))
    .orderBy(asc(t.at))
    .limit(1);
  const until = next && next.at < shift(ingress.at, INHERIT_MS) ? next.at : shift(ingress.at, INHERIT_MS);
  const rows = await db
    .select()
    .from(t)
    .where(and(thread, EGRESS, gte(t.at, ingress.at), lte(t.at, until)));
  return rows.filter((r) => r.at < until || next === undefined);
}

async function responseOn(db: Database, ingress: Hop): Promise<Hop[]> {
  return db
    .select()
    .from(t)
    .where(and(eq(t.local, ingress.local), eq(t.peer, ingress.peer), EGRESS_RESPONSE, gte(t.at, ingress.at)))
    .orderBy(asc(t.at))
    .limit(1);
}

export async function traceTimeline(db: Database, traceId: string): Promise<Hop[]> {
  const found = new Map<string, Hop>();
  const seeds = await db
    .select()
    .from(t)
    .where(and(eq(t.traceId, traceId), HAS_TRACE_ID));
  for (const h of seeds) found.set(key(h), h);
  const queue = seeds.filter((h) => h.direction === "egress" && h.kind === "request");
  while (queue.length > 0 && found.size < MAX_HOPS) {
    const request = queue.shift()!;
    const ingress = await calleeIngress(db, request);
    if (!ingress || (ingress.traceId !== "" && ingress.traceId !== traceId)) continue;
    if (found.has(key(ingress))) continue;
    found.set(key(ingress), ingress);
    for (const h of [...(await sameThread(db, ingress)), ...(await responseOn(db, ingress))]) {
      if (found.has(key(h)) || (h.traceId !== "" && h.traceId !== traceId)) continue;
      found.set(key(h), h);
      if (h.kind === "request") queue.push(h);
    }
  }
  return [...found.values()].sort((a, b) => a.at.getTime() - b.at.getTime() || (a.tsNs < b.tsNs ? -1 : 1));
}
