import { expect, test } from "bun:test";
import { coverageBody, coverageResponse, notModified } from "./coverage-body.ts";

const fields = { overall: { expected: 4, dyed: 3, ratio: 0.75 }, hops: [], responses: [] };

test("the cached members and the request's echo make the same JSON as serialising it whole", () => {
  const cached = coverageBody(fields, 0);
  const { body } = coverageResponse(cached, "rel_1", "2026-01-01T00:00:00.000Z", null);
  expect(body).toBe(
    JSON.stringify({ releaseId: "rel_1", from: "2026-01-01T00:00:00.000Z", to: null, ...fields }),
  );
});

test("the ETag changes with the answer and with the echoed window, not otherwise", () => {
  const a = coverageBody(fields, 0);
  const b = coverageBody({ ...fields, hops: [{ caller: "a" }] }, 0);
  const tag = (c: typeof a, from: string | null) => coverageResponse(c, "rel_1", from, null).etag;
  expect(tag(a, null)).toBe(tag(coverageBody(fields, 5), null));
  expect(tag(a, null)).not.toBe(tag(b, null));
  expect(tag(a, null)).not.toBe(tag(a, "2026-01-01T00:00:00.000Z"));
  expect(tag(a, null)).toMatch(/^"[0-9a-z]+\.[0-9a-z]+"$/);
});

test("If-None-Match: a list, weak tags and * match; anything else does not", () => {
  expect(notModified(undefined, '"x"')).toBe(false);
  expect(notModified('"y", W/"x"', '"x"')).toBe(true);
  expect(notModified("*", '"x"')).toBe(true);
  expect(notModified('"y"', '"x"')).toBe(false);
});
