// One way to reach the broker: brokers from INDIGO_KAFKA_BROKERS, quiet logs, the partitioner pinned.
import { type ISocketFactory, Kafka, logLevel } from "kafkajs";
import { registerZstdCodec } from "./zstd-codec.ts";

export function brokersFromEnv(env: Record<string, string | undefined> = process.env): string[] {
  const list = env.INDIGO_KAFKA_BROKERS ?? `127.0.0.1:${env.INDIGO_KAFKA_PORT ?? "19092"}`;
  return list
    .split(",")
    .map((b) => b.trim())
    .filter((b) => b.length > 0);
}

export interface KafkaOptions {
  readonly brokers?: string[];
  // Probes that expect a broker to be down say so, instead of logging every refused connection.
  readonly quiet?: boolean;
  /** How a connection to a broker is made (kafkajs' own: net.connect to the broker's address). */
  readonly socketFactory?: ISocketFactory;
  /** Attempts after the first of a failed request (default 5). */
  readonly retries?: number;
}

export function createKafka(clientId: string, options: KafkaOptions = {}): Kafka {
  registerZstdCodec();
  return new Kafka({
    clientId,
    brokers: options.brokers ?? brokersFromEnv(),
    logLevel: options.quiet ? logLevel.NOTHING : logLevel.ERROR,
    connectionTimeout: 3000,
    retry: { retries: options.retries ?? 5, initialRetryTime: 200 },
    ...(options.socketFactory ? { socketFactory: options.socketFactory } : {}),
  });
}
