import { expect, test } from "bun:test";
import { DEFAULT_COHORT_FILTER_MAX_ENTRIES } from "./cohort-filter.ts";
import { configFromEnv } from "./config.ts";
import { DEFAULT_TRACE_RETENTION_MS, DEFAULT_UNDYED_RETENTION_MS } from "./write/retention.ts";

test("unset windows take their defaults; set ones are read, 0 included", () => {
  const d = configFromEnv({});
  expect([d.bucketMs, d.undyedRetentionMs, d.traceRetentionMs]).toEqual([
    10_000,
    DEFAULT_UNDYED_RETENTION_MS,
    DEFAULT_TRACE_RETENTION_MS,
  ]);
  const c = configFromEnv({
    INDIGO_COVERAGE_BUCKET_MS: "60000",
    INDIGO_UNDYED_RETENTION_MS: "0",
    INDIGO_TRACE_RETENTION_MS: "86400000",
  });
  expect([c.bucketMs, c.undyedRetentionMs, c.traceRetentionMs]).toEqual([60_000, 0, 86_400_000]);
});

test("a window that is not a whole number of ms stops the start, naming the setting", () => {
  expect(() => configFromEnv({ INDIGO_TRACE_RETENTION_MS: "7d" })).toThrow(
    'INDIGO_TRACE_RETENTION_MS must be a whole number of milliseconds ≥ 0, got "7d"',
  );
  expect(() => configFromEnv({ INDIGO_UNDYED_RETENTION_MS: "-1" })).toThrow("INDIGO_UNDYED_RETENTION_MS");
  expect(() => configFromEnv({ INDIGO_COVERAGE_BUCKET_MS: "0" })).toThrow(
    'INDIGO_COVERAGE_BUCKET_MS must be a whole number of milliseconds ≥ 1, got "0"',
  );
});

test("connections: 5 s to connect and the session bounds by default, each overridable", () => {
  const d = configFromEnv({});
  expect(d.pool).toEqual({ connectTimeoutS: 5 });
  expect([d.session.statement_timeout, d.session.idle_in_transaction_session_timeout]).toEqual([
    60_000, 30_000,
  ]);
  const c = configFromEnv({
    INDIGO_PROJECTOR_CONNECT_TIMEOUT_MS: "1500",
    INDIGO_PROJECTOR_STATEMENT_TIMEOUT_MS: "120000",
  });
  expect(c.pool).toEqual({ connectTimeoutS: 2 });
  expect(c.session.statement_timeout).toBe(120_000);
  expect(() => configFromEnv({ INDIGO_PROJECTOR_CONNECT_TIMEOUT_MS: "soon" })).toThrow(
    "INDIGO_PROJECTOR_CONNECT_TIMEOUT_MS",
  );
});

test("the cohort filter's limit: 8 Mi entries by default, 0 for none, anything else not a count refused", () => {
  expect(configFromEnv({}).cohortFilterMaxEntries).toBe(DEFAULT_COHORT_FILTER_MAX_ENTRIES);
  expect(DEFAULT_COHORT_FILTER_MAX_ENTRIES).toBe(8 * 1024 * 1024);
  expect(configFromEnv({ INDIGO_PROJECTOR_COHORT_FILTER_MAX_ENTRIES: "0" }).cohortFilterMaxEntries).toBe(0);
  expect(() => configFromEnv({ INDIGO_PROJECTOR_COHORT_FILTER_MAX_ENTRIES: "8M" })).toThrow(
    "INDIGO_PROJECTOR_COHORT_FILTER_MAX_ENTRIES",
  );
});
