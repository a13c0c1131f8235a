DROP INDEX "trace_hops_connection_idx";--> statement-breakpoint
DROP INDEX "trace_hops_thread_idx";--> statement-breakpoint
ALTER TABLE "trace_hops" DROP CONSTRAINT "trace_hops_trace_id_agent_id_seq_pk";--> statement-breakpoint
CREATE INDEX "trace_hops_trace_idx" ON "trace_hops" USING hash ("trace_id") WHERE "trace_hops"."trace_id" <> '';--> statement-breakpoint
CREATE INDEX "trace_hops_callee_request_idx" ON "trace_hops" USING btree ("local","peer","at") WHERE "trace_hops"."direction" = 'ingress' and "trace_hops"."kind" = 'request';--> statement-breakpoint
CREATE INDEX "trace_hops_response_idx" ON "trace_hops" USING btree ("local","peer","at") WHERE "trace_hops"."direction" = 'egress' and "trace_hops"."kind" = 'response';--> statement-breakpoint
CREATE INDEX "trace_hops_thread_request_idx" ON "trace_hops" USING btree ("agent_id","pid","tid","at") WHERE "trace_hops"."direction" = 'ingress' and "trace_hops"."kind" = 'request';--> statement-breakpoint
CREATE INDEX "trace_hops_thread_egress_idx" ON "trace_hops" USING btree ("agent_id","pid","tid","at") WHERE "trace_hops"."direction" = 'egress';