DROP INDEX "undyed_hop_requests_trace_idx";--> statement-breakpoint
ALTER TABLE "undyed_hop_requests" ALTER COLUMN "agent_id" DROP NOT NULL;--> statement-breakpoint
ALTER TABLE "undyed_hop_requests" ALTER COLUMN "seq" DROP NOT NULL;--> statement-breakpoint
CREATE INDEX "undyed_hop_requests_bucket_idx" ON "undyed_hop_requests" USING brin ("bucket_start");--> statement-breakpoint
CREATE INDEX "undyed_hop_requests_trace_idx" ON "undyed_hop_requests" USING hash ("trace_id");