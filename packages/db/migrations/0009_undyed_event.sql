ALTER TABLE "undyed_hop_requests" ADD COLUMN "boot_ns" bigint;--> statement-breakpoint
ALTER TABLE "undyed_hop_requests" ADD COLUMN "event" "bytea";