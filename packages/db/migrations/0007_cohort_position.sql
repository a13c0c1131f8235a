ALTER TABLE "cohort_traces" ADD COLUMN "position" bigserial NOT NULL;--> statement-breakpoint
CREATE INDEX "cohort_traces_position_idx" ON "cohort_traces" USING btree ("position");