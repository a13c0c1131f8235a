// The broker that ./dev started carries the topic contract: every topic, its partitions, control compacted.
import { afterAll, expect, test } from "bun:test";
import { createKafka, ensureTopics, TOPIC_SPECS, TOPICS } from "@indigo/bus";

const admin = createKafka("test-topics").admin();
afterAll(() => admin.disconnect());

test("the contract's topics exist with their partitions and cleanup policies, and a re-run changes nothing", async () => {
  await admin.connect();
  const checks = await ensureTopics(admin);
  expect(checks.map((c) => ({ topic: c.topic, created: c.created, problems: c.problems }))).toEqual(
    TOPIC_SPECS.map((s) => ({ topic: s.topic, created: false, problems: [] })),
  );
  const configs = await admin.describeConfigs({
    includeSynonyms: false,
    resources: [{ type: 2, name: TOPICS.control }],
  });
  const policy = configs.resources[0]?.configEntries.find((e) => e.configName === "cleanup.policy");
  expect(policy?.configValue).toBe("compact");
  const meta = await admin.fetchTopicMetadata({ topics: [TOPICS.dye] });
  expect(meta.topics[0]?.partitions.length).toBe(6);
}, 30_000);

test("a topic set up by hand with the wrong shape is reported, not silently used", async () => {
  await admin.connect();
  const topic = `indigo.test.misshapen.${Date.now()}`;
  await admin.createTopics({ waitForLeaders: true, topics: [{ topic, numPartitions: 1 }] });
  try {
    const spec = { topic, partitions: 3, config: { "cleanup.policy": "compact" } };
    // The spec type names contract topics; a test topic stands in for one here.
    const [check] = await ensureTopics(admin, [spec as unknown as (typeof TOPIC_SPECS)[number]]);
    expect(check?.created).toBe(false);
    expect(check?.problems).toEqual([
      "has 1 partitions, the contract needs 3",
      "cleanup.policy is delete, the contract needs compact",
    ]);
  } finally {
    await admin.deleteTopics({ topics: [topic] });
  }
}, 30_000);
