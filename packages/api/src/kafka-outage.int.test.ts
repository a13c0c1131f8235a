// The API when Kafka does not answer (the real broker behind a relay the test controls; every kafkajs
// connection goes through it): commands, which append to the release log, are 503s naming Kafka; reads,
// which need only the projections, still answer. And a command whose append landed but whose publication
// of the agents' rules failed: it took effect, and the rules follow on the next retry.
import { afterAll, beforeAll, expect, test } from "bun:test";
import { connect } from "node:net";
import { brokersFromEnv, createKafka, type Kafka, type Producer } from "@indigo/bus";
import { AgentControlSchema, fromBinary } from "@indigo/proto";
import { apiWith } from "./testing/api-with.ts";
import { type FreezableProxy, freezableProxy } from "./testing/freezable-proxy.ts";
import { readTopic } from "./testing/topic.ts";
import { createWorld, sampleRelease, type World } from "./testing/world.ts";

let world: World;
let proxy: FreezableProxy;
let kafka: Kafka;
beforeAll(async () => {
  world = await createWorld("kafka_outage");
  const [host = "127.0.0.1", port = "19092"] = (brokersFromEnv()[0] ?? "").split(":");
  proxy = await freezableProxy(host, Number(port));
  // Whatever broker address the metadata names, connect through the relay.
  kafka = createKafka("test-kafka-outage", {
    brokers: [`127.0.0.1:${proxy.port}`],
    socketFactory: ({ onConnect }) => connect({ host: "127.0.0.1", port: proxy.port }, onConnect),
    retries: 2,
    quiet: true,
  });
}, 120_000);
afterAll(async () => {
  await proxy.close().catch(() => {});
  await world.close();
}, 60_000);

test("Kafka refusing connections: a command is a 503 naming Kafka, nothing is written; reads answer", async () => {
  const admin = kafka.admin();
  const producer = kafka.producer({ idempotent: true, maxInFlightRequests: 1 });
  await Promise.all([admin.connect(), producer.connect()]);
  const { call } = apiWith(world, { db: world.sb.database.db, admin, producer, requestTimeoutMs: 20_000 });
  const created = await world.call("POST", "/v1/releases", { body: sampleRelease({ name: "no-log" }) });
  const { id } = (await created.json()) as { id: string };

  await proxy.close(); // connections dropped, new ones refused
  try {
    const started = performance.now();
    const res = await call("POST", `/v1/releases/${id}/start`);
    const body = (await res.json()) as { type: string; detail: string };
    expect([res.status, body.type]).toEqual([503, "/problems/unavailable"]);
    expect(body.detail).toMatch(/^Kafka did not answer: /);
    expect(res.headers.get("retry-after")).toBe("2");
    expect(performance.now() - started).toBeLessThan(20_000);

    const read = await call("GET", `/v1/releases/${id}`);
    expect(read.status).toBe(200);
    expect(await read.json()).toMatchObject({ state: "draft", version: 1 });
  } finally {
    await Promise.allSettled([producer.disconnect(), admin.disconnect()]);
  }
}, 60_000);

/** The producer, except that while `faults.left` > 0 its sends to `topic` fail as a lost broker connection would. */
function failingOn(producer: Producer, topic: string, faults: { left: number }): Producer {
  return new Proxy(producer, {
    get(target, key, receiver) {
      if (key !== "send") return Reflect.get(target, key, receiver);
      return (record: Parameters<Producer["send"]>[0]) => {
        if (record.topic === topic && faults.left > 0) {
          faults.left -= 1;
          const error = Object.assign(new Error("Connection error: connect ECONNREFUSED"), {
            name: "KafkaJSConnectionError",
            retriable: true,
          });
          return Promise.reject(error);
        }
        return target.send(record);
      };
    },
  });
}

test("the rules' publication fails after the command landed: a 200 that says so, and the next retry publishes them", async () => {
  const producer = world.sb.kafka.producer({ idempotent: true, maxInFlightRequests: 1 });
  await producer.connect();
  const faults = { left: 0 };
  try {
    const api = apiWith(world, {
      db: world.sb.database.db,
      admin: world.sb.admin,
      producer: failingOn(producer, world.controlTopic, faults),
      requestTimeoutMs: 20_000,
    });
    const created = await world.call("POST", "/v1/releases", { body: sampleRelease({ name: "late-rules" }) });
    const { id, dye } = (await created.json()) as { id: string; dye: number };
    await api.commands.publishPending(); // the publication an API makes once it has started
    expect(api.commands.controlIsPending).toBe(false);
    const before = (await readTopic(world.sb.kafka, world.controlTopic)).length;
    faults.left = 1;

    const res = await api.call("POST", `/v1/releases/${id}/start`);
    expect(res.status).toBe(200);
    expect(res.headers.get("indigo-control-published")).toBe("false");
    expect(await res.json()).toMatchObject({ state: "running", version: 2 });
    expect((await readTopic(world.sb.kafka, world.controlTopic)).length).toBe(before);
    expect(api.commands.controlIsPending).toBe(true);
    const scrape = async () => (await Promise.resolve(api.app.request("/metrics"))).text();
    expect(await scrape()).toContain("\nindigo_api_control_publish_pending 1\n");

    await api.commands.publishPending(); // what the API's loop runs every INDIGO_CONTROL_RETRY_MS
    const after = await readTopic(world.sb.kafka, world.controlTopic);
    const last = after.at(-1);
    expect(last?.key).toBe("*");
    const control = fromBinary(AgentControlSchema, last?.value ?? Buffer.alloc(0));
    expect(control.rules.find((r) => r.releaseId === id)?.dye).toBe(dye);
    expect(api.commands.controlIsPending).toBe(false);
    expect(await scrape()).toContain("\nindigo_api_control_publish_pending 0\n");
    await api.commands.publishPending(); // nothing pending: nothing published
    expect((await readTopic(world.sb.kafka, world.controlTopic)).length).toBe(after.length);
  } finally {
    await producer.disconnect();
  }
}, 60_000);
