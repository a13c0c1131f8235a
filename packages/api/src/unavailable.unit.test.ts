// Which errors mean "a dependency did not answer" (a 503 naming it) and which are anything else (left to the
// caller): the database driver's and kafkajs' connection errors carry the same codes.
import { expect, test } from "bun:test";
import { unavailable } from "./unavailable.ts";

const coded = (message: string, code: string, cause?: unknown) =>
  Object.assign(new Error(message, cause === undefined ? {} : { cause }), { code });
const kafkaError = (name: string, message: string, extra: Record<string, unknown> = {}, cause?: unknown) =>
  Object.assign(new Error(message, cause === undefined ? {} : { cause }), { name, ...extra });

test("database: connection failures and a server that cannot serve, anywhere in the cause chain", () => {
  expect(unavailable(coded("connect ECONNREFUSED 127.0.0.1:1", "ECONNREFUSED"))).toEqual({
    dependency: "the database",
    reason: "ECONNREFUSED: connect ECONNREFUSED 127.0.0.1:1",
  });
  // drizzle wraps the driver's error: "Failed query: …" with the original as its cause
  const wrapped = new Error("Failed query: select 1", {
    cause: coded("write CONNECT_TIMEOUT", "CONNECT_TIMEOUT"),
  });
  expect(unavailable(wrapped)?.reason).toBe("CONNECT_TIMEOUT: write CONNECT_TIMEOUT");
  const reasons = [
    coded("terminating connection due to administrator command", "57P01"),
    coded("sorry, too many clients already", "53300"),
    coded("canceling statement due to statement timeout", "57014"),
    coded("connection does not exist", "08003"),
  ].map((e) => unavailable(e)?.reason);
  expect(reasons).toEqual([
    "the server is shutting down (57P01: terminating connection due to administrator command)",
    "the server has no connection left (53300: sorry, too many clients already)",
    "a statement ran past the statement timeout (57014: canceling statement due to statement timeout)",
    "connection failure (08003: connection does not exist)",
  ]);
});

test("Kafka: kafkajs' connection errors (whatever code they carry), timeouts, exhausted retries, retriable errors", () => {
  const refused = kafkaError("KafkaJSConnectionError", "Connection error: connect ECONNREFUSED 127.0.0.1:9", {
    code: "ECONNREFUSED",
    retriable: true,
  });
  expect(unavailable(refused)).toEqual({
    dependency: "Kafka",
    reason: "KafkaJSConnectionError: Connection error: connect ECONNREFUSED 127.0.0.1:9",
  });
  const exhausted = kafkaError(
    "KafkaJSNumberOfRetriesExceeded",
    "Connection error",
    { retriable: false },
    refused,
  );
  expect(unavailable(exhausted)?.dependency).toBe("Kafka");
  const leaderMoved = kafkaError(
    "KafkaJSProtocolError",
    "This server is not the leader for that topic-partition",
    {
      retriable: true,
    },
  );
  expect(unavailable(leaderMoved)?.dependency).toBe("Kafka");
  const tooLarge = kafkaError("KafkaJSProtocolError", "The request included a message larger than the max", {
    retriable: false,
  });
  expect(unavailable(tooLarge)).toBeUndefined(); // the request's fault: not something to retry elsewhere
  // kafkajs' request on a broker still connecting is a plain Error
  expect(unavailable(new Error("Broker not connected"))).toEqual({
    dependency: "Kafka",
    reason: "Error: Broker not connected",
  });
});

test("everything else is not: constraint violations, bad input, plain errors, non-errors", () => {
  expect(unavailable(coded("duplicate key value violates unique constraint", "23505"))).toBeUndefined();
  expect(unavailable(coded("invalid input syntax for type uuid", "22P02"))).toBeUndefined();
  expect(unavailable(new Error("decide returned no events"))).toBeUndefined();
  expect(unavailable(new Error("numeric code", { cause: { code: 57014 } }))).toBeUndefined();
  expect(unavailable("ECONNREFUSED")).toBeUndefined();
});
