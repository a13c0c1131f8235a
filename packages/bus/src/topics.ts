// The topic contract (DESIGN.md "Event log"): names, keys, partitions and retention in one place, so the
// broker set-up, producers and consumers cannot drift apart.

export const TOPICS = {
  dye: "indigo.dye.v1",
  agent: "indigo.agent.v1",
  release: "indigo.release.v1",
  control: "indigo.control.v1",
  dlq: "indigo.dlq.v1",
} as const;

export type TopicName = (typeof TOPICS)[keyof typeof TOPICS];

export interface TopicSpec {
  readonly topic: TopicName;
  readonly partitions: number;
  readonly config: Readonly<Record<string, string>>;
}

const DAY_MS = 24 * 60 * 60 * 1000;

export const TOPIC_SPECS: readonly TopicSpec[] = [
  // Partitions scale the projector: one consumer per partition at most.
  {
    topic: TOPICS.dye,
    partitions: 6,
    config: { "retention.ms": String(30 * DAY_MS), "cleanup.policy": "delete" },
  },
  {
    topic: TOPICS.agent,
    partitions: 3,
    config: { "retention.ms": String(7 * DAY_MS), "cleanup.policy": "delete" },
  },
  // The release aggregate's log of record: kept forever, one partition keeps every release's events in order.
  { topic: TOPICS.release, partitions: 1, config: { "retention.ms": "-1", "cleanup.policy": "delete" } },
  // Desired state per agent: only the latest value per key matters.
  {
    topic: TOPICS.control,
    partitions: 1,
    config: { "cleanup.policy": "compact", "min.compaction.lag.ms": "0", "segment.ms": String(DAY_MS) },
  },
  {
    topic: TOPICS.dlq,
    partitions: 1,
    config: { "retention.ms": String(30 * DAY_MS), "cleanup.policy": "delete" },
  },
];
