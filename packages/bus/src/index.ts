// @indigo/bus: the Kafka side of the contract — topic names and shapes, a configured client, topic set-up.

export type { Admin, Consumer, Kafka, Producer } from "kafkajs";
export { CompressionTypes } from "kafkajs";
export {
  brokerReachable,
  ensureTopics,
  type TopicCheck,
  waitForBroker,
  waitForTopics,
} from "./ensure-topics.ts";
export { brokersFromEnv, createKafka, type KafkaOptions } from "./kafka.ts";
export { type KafkaConnection, type KeepConnectingOptions, keepConnecting } from "./keep-connecting.ts";
export { TOPIC_SPECS, TOPICS, type TopicName, type TopicSpec } from "./topics.ts";
export { registerZstdCodec } from "./zstd-codec.ts";
