// Creates the contract's topics if missing and checks existing ones against it, so a broker that was set
// up by hand with the wrong shape (too few partitions, control not compacted) is reported, not used.

import type { Admin } from "kafkajs";
import { createKafka } from "./kafka.ts";
import { TOPIC_SPECS, type TopicSpec } from "./topics.ts";

export interface TopicCheck {
  readonly topic: string;
  readonly created: boolean;
  readonly problems: readonly string[];
}

export async function waitForBroker(admin: Admin, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  let lastError: unknown;
  while (Date.now() < deadline) {
    try {
      await admin.connect();
      await admin.listTopics();
      return;
    } catch (error) {
      lastError = error;
      await Bun.sleep(500);
    }
  }
  throw new Error(`broker not reachable within ${timeoutMs} ms: ${String(lastError)}`);
}

/** True when a broker answers at `brokers` now (one attempt): tests and benchmarks skip with a reason otherwise. */
export async function brokerReachable(brokers: string[]): Promise<boolean> {
  const admin = createKafka("indigo-probe", { brokers, quiet: true }).admin();
  try {
    await admin.connect();
    await admin.listTopics();
    return true;
  } catch {
    return false;
  } finally {
    await admin.disconnect().catch(() => {});
  }
}

export async function ensureTopics(
  admin: Admin,
  specs: readonly TopicSpec[] = TOPIC_SPECS,
): Promise<TopicCheck[]> {
  const existing = new Set(await admin.listTopics());
  const missing = specs.filter((s) => !existing.has(s.topic));
  if (missing.length > 0) {
    await admin.createTopics({
      waitForLeaders: true,
      topics: missing.map((s) => ({
        topic: s.topic,
        numPartitions: s.partitions,
        replicationFactor: 1,
        configEntries: Object.entries(s.config).map(([name, value]) => ({ name, value })),
      })),
    });
  }
  const created = new Set(missing.map((s) => s.topic));
  const metadata = await admin.fetchTopicMetadata({ topics: specs.map((s) => s.topic) });
  const configs = await admin.describeConfigs({
    includeSynonyms: false,
    resources: specs.map((s) => ({ type: 2 /* TOPIC */, name: s.topic })),
  });
  return specs.map((spec) => {
    const problems: string[] = [];
    const partitions = metadata.topics.find((t) => t.name === spec.topic)?.partitions.length ?? 0;
    if (partitions < spec.partitions)
      problems.push(`has ${partitions} partitions, the contract needs ${spec.partitions}`);
    const entries = configs.resources.find((r) => r.resourceName === spec.topic)?.configEntries ?? [];
    const policy = entries.find((e) => e.configName === "cleanup.policy")?.configValue;
    if (policy !== spec.config["cleanup.policy"]) {
      problems.push(`cleanup.policy is ${policy}, the contract needs ${spec.config["cleanup.policy"]}`);
    }
    return { topic: spec.topic, created: created.has(spec.topic), problems };
  });
}

/**
 * Waits until the broker serves metadata for every partition of `topics` with a leader. A topic just created
 * (even with waitForLeaders) can still answer "does not host this topic-partition" to the next client for a
 * moment; code that creates topics and uses them at once waits here first.
 */
export async function waitForTopics(
  admin: Admin,
  topics: readonly string[],
  timeoutMs = 15_000,
): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  let last = "";
  while (Date.now() < deadline) {
    try {
      const { topics: meta } = await admin.fetchTopicMetadata({ topics: [...topics] });
      const missing = topics.filter((t) => {
        const parts = meta.find((m) => m.name === t)?.partitions ?? [];
        return parts.length === 0 || parts.some((p) => p.leader < 0);
      });
      if (missing.length === 0) return;
      last = `no leader yet for ${missing.join(", ")}`;
    } catch (error) {
      last = error instanceof Error ? error.message : String(error);
    }
    await Bun.sleep(100);
  }
  throw new Error(`topics not ready within ${timeoutMs} ms: ${last}`);
}
