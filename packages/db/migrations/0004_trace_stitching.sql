ALTER TABLE "trace_hops" ADD COLUMN "local" text DEFAULT '' NOT NULL;--> statement-breakpoint
ALTER TABLE "trace_hops" ADD COLUMN "cookie" bigint DEFAULT 0 NOT NULL;--> statement-breakpoint
ALTER TABLE "trace_hops" ADD COLUMN "pid" integer DEFAULT 0 NOT NULL;--> statement-breakpoint
ALTER TABLE "trace_hops" ADD COLUMN "tid" integer DEFAULT 0 NOT NULL;--> statement-breakpoint
CREATE INDEX "trace_hops_connection_idx" ON "trace_hops" USING btree ("local","peer","at");--> statement-breakpoint
CREATE INDEX "trace_hops_thread_idx" ON "trace_hops" USING btree ("agent_id","pid","tid","at");