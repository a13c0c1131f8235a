// @indigo/projector: folds the Kafka log (dye events, agent status, release events) into the Postgres
// projections, exactly once per message, with the consumed offsets stored in the same transactions.
export { type ApplyContext, applyBatch, CONTRACT_TOPICS, type ProjectorTopics } from "./apply-batch.ts";
export { configFromEnv } from "./config.ts";
export { type RunningProjector, startProjector } from "./projector.ts";
export { assertGroupIdle, dropProjections } from "./rebuild.ts";
export {
  parseServiceRules,
  ServiceIdentity,
  type ServiceRule,
  serviceRulesFile,
} from "./service-identity.ts";
