// @indigo/release: the gray-release aggregate — its state and `evolve` (the decider's pure half).
export {
  type CohortRule,
  EvolveError,
  evolve,
  type LaneService,
  type ReleaseState,
  type ReleaseStatus,
} from "./state.ts";
