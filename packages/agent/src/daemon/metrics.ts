// DaemonSnapshot → Prometheus text exposition (version 0.0.4).
import { EventClass } from "@indigo/proto";
import type { DaemonSnapshot } from "./snapshot.ts";

type Kind = "counter" | "gauge";

const esc = (v: string) => v.replaceAll("\\", "\\\\").replaceAll('"', '\\"').replaceAll("\n", "\\n");

export const renderMetrics = (s: DaemonSnapshot): string => {
  const out: string[] = [];
  const metric = (
    name: string,
    kind: Kind,
    help: string,
    samples: [Record<string, string>, number | bigint][],
  ) => {
    out.push(`# HELP ${name} ${help}`, `# TYPE ${name} ${kind}`);
    for (const [labels, value] of samples) {
      const l = Object.entries(labels)
        .map(([k, v]) => `${k}="${esc(v)}"`)
        .join(",");
      out.push(`${name}${l ? `{${l}}` : ""} ${value.toString()}`);
    }
  };
  const one = (name: string, kind: Kind, help: string, value: number | bigint) =>
    metric(name, kind, help, [[{}, value]]);
  one("indigo_agent_info", "gauge", "Agent identity and mode (always 1).", 1);
  out[out.length - 1] =
    `indigo_agent_info{agent_id="${esc(s.agentId)}",node="${esc(s.node)}",mode="${s.mode}"} 1`;
  metric(
    "indigo_agent_mode",
    "gauge",
    "1 for the mode the agent runs in (full: eBPF; degraded: netfilter marks L3/L4 rules, no coverage).",
    (["full", "degraded"] as const).map((m) => [{ mode: m }, s.mode === m ? 1 : 0]),
  );
  if (s.degraded) {
    const d = s.degraded;
    metric("indigo_agent_degraded_info", "gauge", "Why the agent runs degraded (always 1 when degraded).", [
      [{ reason: d.reason, cause: d.cause, backend: d.backend }, 1],
    ]);
    one(
      "indigo_agent_degraded_packets_marked_total",
      "counter",
      "Packets netfilter marked for the L3/L4 rules in degraded mode (incl. restored from conntrack).",
      d.packetsMarked,
    );
  }
  one(
    "indigo_agent_engine_attached",
    "gauge",
    "1 when the eBPF programs are attached.",
    s.engineAttached ? 1 : 0,
  );
  metric(
    "indigo_agent_kernel_counter_total",
    "counter",
    "Exact per-CPU kernel counters of the dye engine, summed over CPUs, by name.",
    Object.entries(s.counters).map(([name, v]) => [{ name }, v]),
  );
  one("indigo_agent_events_received_total", "counter", "Events read from the ring buffer.", s.eventsReceived);
  one(
    "indigo_agent_events_undecodable_total",
    "counter",
    "Ring-buffer records that failed to decode.",
    s.eventsUndecodable,
  );
  one("indigo_agent_batches_total", "counter", "DyeEventBatch messages closed.", s.batchesClosed);
  one(
    "indigo_agent_events_produced_total",
    "counter",
    "Events acknowledged by Kafka (direct and replayed).",
    s.eventsProduced,
  );
  one("indigo_agent_batches_produced_total", "counter", "Batches acknowledged by Kafka.", s.batchesProduced);
  one(
    "indigo_agent_events_replayed_total",
    "counter",
    "Events replayed from the spool into Kafka.",
    s.eventsReplayed,
  );
  one("indigo_agent_spooled_events", "gauge", "Events waiting in the local spool.", s.spooledEvents);
  one("indigo_agent_spool_bytes", "gauge", "Bytes of the local spool.", s.spoolBytes);
  one("indigo_agent_spool_events_total", "counter", "Events ever written to the spool.", s.spoolEventsTotal);
  one(
    "indigo_agent_spool_dropped_events_total",
    "counter",
    "Events dropped from the spool: the oldest segments past the bound, or records its disk refused.",
    s.spoolDroppedEvents,
  );
  one(
    "indigo_agent_spool_write_failures_total",
    "counter",
    "Spool writes the disk refused (full, over quota, failing); the events that could not be kept count as dropped.",
    s.spoolWriteFailures,
  );
  one(
    "indigo_agent_spool_corrupt_records_total",
    "counter",
    "Damaged spool records found (and cut) at start.",
    s.spoolCorruptRecords,
  );
  one("indigo_agent_last_seq", "gauge", "Last sequence number handed out.", s.lastSeq);
  one(
    "indigo_agent_last_produced_seq",
    "gauge",
    "Last sequence number acknowledged by Kafka.",
    s.lastProducedSeq,
  );
  one("indigo_agent_kafka_connected", "gauge", "1 when the producer is connected.", s.kafkaConnected ? 1 : 0);
  one("indigo_agent_spooling", "gauge", "1 while batches go to the spool.", s.spooling ? 1 : 0);
  one(
    "indigo_agent_event_rate_per_second",
    "gauge",
    "Events read per second over the last status period.",
    s.eventRatePerS,
  );
  one("indigo_agent_control_generation", "gauge", "Control generation applied.", s.appliedGeneration);
  one(
    "indigo_agent_control_errors_total",
    "counter",
    "Control messages that could not be applied.",
    s.controlErrors,
  );
  metric(
    "indigo_agent_sampling_per_million",
    "gauge",
    "Events kept per million, by class.",
    [...s.sampling].map(([cls, v]) => [{ class: (EventClass[cls] ?? String(cls)).toLowerCase() }, v]),
  );
  return `${out.join("\n")}\n`;
};
