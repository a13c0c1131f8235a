// Waiting in a test for what another process does (an agent's line, a message in Kafka, a row): the probe is
// asked again until it answers or the time is up, and the failure names what was awaited.

export interface PollOptions {
  readonly ms: number;
  readonly everyMs?: number;
  /** What the failure adds to "timed out waiting for …", e.g. what the agent said meanwhile. */
  readonly detail?: () => string;
}

/** The probe's first answer that is not undefined. */
export async function pollFor<X>(
  what: string,
  probe: () => X | undefined | Promise<X | undefined>,
  { ms, everyMs = 50, detail }: PollOptions,
): Promise<X> {
  const end = Date.now() + ms;
  for (;;) {
    const x = await probe();
    if (x !== undefined) return x;
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}${detail ? `: ${detail()}` : ""}`);
    await Bun.sleep(everyMs);
  }
}

/** Resolves once ok() holds. */
export const waitUntil = (
  what: string,
  ok: () => boolean | Promise<boolean>,
  opts: PollOptions,
): Promise<true> => pollFor(what, async () => ((await ok()) ? true : undefined), opts);
