// Which errors mean "the database did not answer" (a 503) and which are anything else (left to the caller).
import { expect, test } from "bun:test";
import { databaseUnavailable } from "./unavailable.ts";

const coded = (message: string, code: string, cause?: unknown) =>
  Object.assign(new Error(message, cause === undefined ? {} : { cause }), { code });

test("connection failures and a server that cannot serve are unavailability, found anywhere in the cause chain", () => {
  expect(databaseUnavailable(coded("connect ECONNREFUSED 127.0.0.1:1", "ECONNREFUSED"))).toBe(
    "ECONNREFUSED: connect ECONNREFUSED 127.0.0.1:1",
  );
  // drizzle wraps the driver's error: "Failed query: …" with the original as its cause
  const wrapped = new Error("Failed query: select 1", {
    cause: coded("write CONNECT_TIMEOUT", "CONNECT_TIMEOUT"),
  });
  expect(databaseUnavailable(wrapped)).toBe("CONNECT_TIMEOUT: write CONNECT_TIMEOUT");
  expect(databaseUnavailable(coded("terminating connection due to administrator command", "57P01"))).toMatch(
    /^the server is shutting down \(57P01/,
  );
  expect(databaseUnavailable(coded("sorry, too many clients already", "53300"))).toMatch(
    /no connection left/,
  );
  expect(databaseUnavailable(coded("canceling statement due to statement timeout", "57014"))).toMatch(
    /statement timeout \(57014/,
  );
  expect(databaseUnavailable(coded("connection does not exist", "08003"))).toMatch(
    /^connection failure \(08003/,
  );
});

test("everything else is not: constraint violations, bad input, plain errors, non-errors", () => {
  expect(
    databaseUnavailable(coded("duplicate key value violates unique constraint", "23505")),
  ).toBeUndefined();
  expect(databaseUnavailable(coded("invalid input syntax for type uuid", "22P02"))).toBeUndefined();
  expect(databaseUnavailable(new Error("decide returned no events"))).toBeUndefined();
  expect(databaseUnavailable(new Error("numeric code", { cause: { code: 57014 } }))).toBeUndefined();
  expect(databaseUnavailable("ECONNREFUSED")).toBeUndefined();
});
