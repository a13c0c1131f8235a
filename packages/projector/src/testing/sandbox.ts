// A projector test's own world on the real servers: a fresh database (migrated) and fresh topics, so tests
// neither see nor disturb the stack's data, and everything is dropped afterwards.
import { type Admin, createKafka, type Kafka, waitForTopics } from "@indigo/bus";
import { applyMigrations, type DatabaseHandle, databaseUrlFromEnv, openDatabase } from "@indigo/db";
import postgres from "postgres";
import type { ProjectorTopics } from "../apply-batch.ts";

export interface Sandbox {
  readonly id: string;
  readonly kafka: Kafka;
  readonly admin: Admin;
  readonly topics: ProjectorTopics;
  readonly databaseUrl: string;
  readonly database: DatabaseHandle;
  /** Another fresh, migrated database (dropped with the sandbox), e.g. for a clean rebuild to compare with. */
  readonly extraDatabase: (label: string) => Promise<{ url: string; handle: DatabaseHandle }>;
  readonly close: () => Promise<void>;
}

function withDatabase(url: string, name: string): string {
  const u = new URL(url);
  u.pathname = `/${name}`;
  return u.toString();
}

export async function createSandbox(
  label: string,
  partitions = { dye: 3, agent: 1, release: 1 },
): Promise<Sandbox> {
  const id = `${label}_${Date.now().toString(36)}_${Math.random().toString(36).slice(2, 6)}`;
  const adminSql = postgres(withDatabase(databaseUrlFromEnv(), "postgres"), { max: 1, onnotice: () => {} });
  const databases: { name: string; handle: DatabaseHandle }[] = [];
  const newDatabase = async (name: string) => {
    await adminSql.unsafe(`create database "${name}"`);
    const url = withDatabase(databaseUrlFromEnv(), name);
    await applyMigrations(url);
    const handle = openDatabase(url, 8);
    databases.push({ name, handle });
    return { url, handle };
  };
  const { url: databaseUrl, handle: database } = await newDatabase(`t_${id}`);

  const kafka = createKafka(`test-${label}`);
  const admin = kafka.admin();
  await admin.connect();
  const topics: ProjectorTopics = {
    dye: `t.${id}.dye`,
    agent: `t.${id}.agent`,
    release: `t.${id}.release`,
    dlq: `t.${id}.dlq`,
  };
  await admin.createTopics({
    waitForLeaders: true,
    topics: [
      { topic: topics.dye, numPartitions: partitions.dye },
      { topic: topics.agent, numPartitions: partitions.agent },
      { topic: topics.release, numPartitions: partitions.release },
      { topic: topics.dlq, numPartitions: 1 },
    ],
  });
  await waitForTopics(admin, Object.values(topics));
  return {
    id,
    kafka,
    admin,
    topics,
    databaseUrl,
    database,
    extraDatabase: (extra) => newDatabase(`t_${id}_${extra}`),
    close: async () => {
      await admin.deleteTopics({ topics: Object.values(topics) }).catch(() => {});
      await admin.disconnect();
      for (const d of databases) {
        await d.handle.close();
        await adminSql.unsafe(`drop database if exists "${d.name}" with (force)`);
      }
      await adminSql.end();
    },
  };
}
