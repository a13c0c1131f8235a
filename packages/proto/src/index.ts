// The event-log contract in TypeScript: messages generated from proto/indigo/v1 (src/gen, built by
// `./dev build`, never edited) plus the helpers every producer and consumer needs.
export { create, fromBinary, fromJson, type JsonValue, toBinary, toJson } from "@bufbuild/protobuf";
export * from "./gen/indigo/v1/agent_control_pb.ts";
export * from "./gen/indigo/v1/agent_status_pb.ts";
export * from "./gen/indigo/v1/dye_event_pb.ts";
export * from "./gen/indigo/v1/release_event_pb.ts";
export * from "./gen/indigo/v1/rules_pb.ts";
