// Errors of applying a message: the message's fault (the same input fails the same way again: dead-letter it)
// or the database's or the connection's (a deadlock, a lock or statement timeout, a lost connection: apply the
// batch again). Dead-lettering a transient failure would lose the message's effect for good — for a release
// event, every later event of that release too, since they apply only at version + 1.

/** A message that cannot be decoded or does not fit the aggregate it addresses. */
export class MessageFault extends Error {}

/**
 * A fault of the message being applied: refused by us (MessageFault), a value our row encoders cannot store
 * (RangeError: an int4 column given a uint32 beyond it, an int8 one a uint64 beyond it) or one Postgres
 * refuses as data (SQLSTATE class 22), anywhere in the cause chain.
 */
export function isMessageFault(error: unknown): boolean {
  for (let e: unknown = error; e instanceof Error; e = e.cause) {
    if (e instanceof MessageFault || e instanceof RangeError) return true;
    const code = (e as { code?: unknown }).code;
    if (typeof code === "string" && code.startsWith("22")) return true;
  }
  return false;
}

export function errorText(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}

/** The innermost cause's message: drizzle wraps Postgres' own words in "Failed query: …" with the params. */
export function rootCauseText(error: unknown): string {
  let e = error;
  while (e instanceof Error && e.cause instanceof Error) e = e.cause;
  return errorText(e);
}
