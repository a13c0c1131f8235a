// Teardown of a test world: every step runs even when an earlier one fails (a failed engine stop must not
// leave a namespace, cgroup or pin folder behind), and every failure is reported together at the end.
export async function cleanUp(steps: ReadonlyArray<() => unknown>): Promise<void> {
  const errors: unknown[] = [];
  for (const step of steps) {
    try {
      await step();
    } catch (e) {
      errors.push(e);
    }
  }
  if (errors.length > 0) throw new AggregateError(errors, "cleanup failed");
}
