CREATE TABLE "agents" (
	"agent_id" text PRIMARY KEY NOT NULL,
	"node" text NOT NULL,
	"mode" text NOT NULL,
	"degraded_reason" text DEFAULT '' NOT NULL,
	"kernel_version" text DEFAULT '' NOT NULL,
	"last_seq" bigint DEFAULT 0 NOT NULL,
	"status" jsonb NOT NULL,
	"last_seen_at" timestamp with time zone NOT NULL
);
--> statement-breakpoint
CREATE TABLE "consumer_offsets" (
	"consumer_group" text NOT NULL,
	"topic" text NOT NULL,
	"partition" integer NOT NULL,
	"next_offset" bigint NOT NULL,
	"updated_at" timestamp with time zone DEFAULT now() NOT NULL,
	CONSTRAINT "consumer_offsets_consumer_group_topic_partition_pk" PRIMARY KEY("consumer_group","topic","partition")
);
--> statement-breakpoint
CREATE TABLE "releases" (
	"id" text PRIMARY KEY NOT NULL,
	"name" text NOT NULL,
	"state" text NOT NULL,
	"version" integer NOT NULL,
	"dye" integer NOT NULL,
	"cohort" jsonb NOT NULL,
	"services" jsonb NOT NULL,
	"created_at" timestamp with time zone NOT NULL,
	"updated_at" timestamp with time zone NOT NULL
);
