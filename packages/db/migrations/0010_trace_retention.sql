CREATE INDEX "cohort_traces_entered_at_idx" ON "cohort_traces" USING brin ("entered_at");--> statement-breakpoint
CREATE INDEX "trace_hops_at_idx" ON "trace_hops" USING brin ("at");