CREATE TABLE "coverage_totals" (
	"release_id" text NOT NULL,
	"caller" text NOT NULL,
	"callee" text NOT NULL,
	"source" text NOT NULL,
	"expected" bigint DEFAULT 0 NOT NULL,
	"dyed" bigint DEFAULT 0 NOT NULL,
	"responses" bigint DEFAULT 0 NOT NULL,
	"errors" bigint DEFAULT 0 NOT NULL,
	CONSTRAINT "coverage_totals_release_id_caller_callee_source_pk" PRIMARY KEY("release_id","caller","callee","source")
);
--> statement-breakpoint
CREATE INDEX "coverage_release_bucket_idx" ON "coverage" USING btree ("release_id","bucket_start");