// The API when Kafka does not answer (the real broker behind a relay the test controls; every kafkajs
// connection goes through it): commands, which append to the release log, are 503s naming Kafka; reads,
// which need only the projections, still answer.
import { afterAll, beforeAll, expect, test } from "bun:test";
import { connect } from "node:net";
import { brokersFromEnv, createKafka, type Kafka } from "@indigo/bus";
import { apiWith } from "./testing/api-with.ts";
import { type FreezableProxy, freezableProxy } from "./testing/freezable-proxy.ts";
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
