// @indigo/release: the gray-release aggregate — its state, `evolve` and `decide` (the decider pair).
export {
  COMMAND_TYPES,
  type CommandMeta,
  type CommandType,
  checkDefinition,
  type Decision,
  decide,
  effectivePercent,
  type Rejection,
  type ReleaseCommand,
  type ReleaseDefinition,
} from "./decide.ts";
export {
  type CohortRule,
  EvolveError,
  evolve,
  type LaneService,
  type ReleaseState,
  type ReleaseStatus,
} from "./state.ts";
