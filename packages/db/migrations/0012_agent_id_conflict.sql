ALTER TABLE "agents" ADD COLUMN "id_conflict" text DEFAULT '' NOT NULL;--> statement-breakpoint
ALTER TABLE "agents" ADD COLUMN "id_conflict_at" timestamp with time zone;