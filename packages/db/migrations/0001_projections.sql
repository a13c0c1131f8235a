CREATE TABLE "agent_delivery" (
	"agent_id" text PRIMARY KEY NOT NULL,
	"events" bigint DEFAULT 0 NOT NULL,
	"duplicates" bigint DEFAULT 0 NOT NULL,
	"max_seq" bigint DEFAULT 0 NOT NULL
);
--> statement-breakpoint
CREATE TABLE "agent_seq_ranges" (
	"agent_id" text NOT NULL,
	"lo" bigint NOT NULL,
	"hi" bigint NOT NULL,
	CONSTRAINT "agent_seq_ranges_agent_id_lo_pk" PRIMARY KEY("agent_id","lo")
);
--> statement-breakpoint
CREATE TABLE "cohort_traces" (
	"trace_id" text PRIMARY KEY NOT NULL,
	"release_id" text NOT NULL,
	"dye" integer NOT NULL,
	"entered_at" timestamp with time zone NOT NULL
);
--> statement-breakpoint
CREATE TABLE "coverage" (
	"release_id" text NOT NULL,
	"caller" text NOT NULL,
	"callee" text NOT NULL,
	"bucket_start" timestamp with time zone NOT NULL,
	"source" text NOT NULL,
	"expected" bigint DEFAULT 0 NOT NULL,
	"dyed" bigint DEFAULT 0 NOT NULL,
	"responses" bigint DEFAULT 0 NOT NULL,
	"errors" bigint DEFAULT 0 NOT NULL,
	CONSTRAINT "coverage_release_id_caller_callee_bucket_start_source_pk" PRIMARY KEY("release_id","caller","callee","bucket_start","source")
);
--> statement-breakpoint
CREATE TABLE "projector_counters" (
	"consumer_group" text NOT NULL,
	"name" text NOT NULL,
	"value" bigint DEFAULT 0 NOT NULL,
	CONSTRAINT "projector_counters_consumer_group_name_pk" PRIMARY KEY("consumer_group","name")
);
--> statement-breakpoint
CREATE TABLE "release_events" (
	"release_id" text NOT NULL,
	"version" integer NOT NULL,
	"kind" text NOT NULL,
	"actor" text NOT NULL,
	"at" timestamp with time zone NOT NULL,
	"data" jsonb NOT NULL,
	CONSTRAINT "release_events_release_id_version_pk" PRIMARY KEY("release_id","version")
);
--> statement-breakpoint
CREATE TABLE "trace_hops" (
	"trace_id" text NOT NULL,
	"agent_id" text NOT NULL,
	"seq" bigint NOT NULL,
	"at" timestamp with time zone NOT NULL,
	"ts_ns" bigint NOT NULL,
	"service" text NOT NULL,
	"peer" text NOT NULL,
	"kind" text NOT NULL,
	"direction" text NOT NULL,
	"dye" integer NOT NULL,
	"source" text NOT NULL,
	"method" text NOT NULL,
	"path" text NOT NULL,
	"status" integer NOT NULL,
	CONSTRAINT "trace_hops_trace_id_agent_id_seq_pk" PRIMARY KEY("trace_id","agent_id","seq")
);
--> statement-breakpoint
CREATE TABLE "undyed_hop_requests" (
	"trace_id" text NOT NULL,
	"agent_id" text NOT NULL,
	"seq" bigint NOT NULL,
	"caller" text NOT NULL,
	"callee" text NOT NULL,
	"bucket_start" timestamp with time zone NOT NULL,
	CONSTRAINT "undyed_hop_requests_trace_id_agent_id_seq_pk" PRIMARY KEY("trace_id","agent_id","seq")
);
--> statement-breakpoint
ALTER TABLE "releases" ADD COLUMN "ramp" jsonb DEFAULT '[]'::jsonb NOT NULL;--> statement-breakpoint
ALTER TABLE "releases" ADD COLUMN "analysis" jsonb;--> statement-breakpoint
ALTER TABLE "releases" ADD COLUMN "ramp_step" integer DEFAULT 0 NOT NULL;--> statement-breakpoint
ALTER TABLE "releases" ADD COLUMN "state_reason" text DEFAULT '' NOT NULL;