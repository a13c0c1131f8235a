// The topics the daemon writes and reads. By contract they are TOPICS (indigo.dye.v1, …); tests and
// side-by-side experiments put INDIGO_TOPIC_PREFIX in front of every name so they never touch the real ones.
import { TOPICS } from "@indigo/bus";

export interface DaemonTopics {
  readonly dye: string;
  readonly agent: string;
  readonly control: string;
  /** control messages this agent could not use (undecodable, or rules that do not compile) */
  readonly dlq: string;
}

export const topicsFromEnv = (env: Record<string, string | undefined> = process.env): DaemonTopics => {
  const prefix = env.INDIGO_TOPIC_PREFIX ?? "";
  return {
    dye: prefix + TOPICS.dye,
    agent: prefix + TOPICS.agent,
    control: prefix + TOPICS.control,
    dlq: prefix + TOPICS.dlq,
  };
};
