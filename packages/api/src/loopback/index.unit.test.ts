import { expect, test } from "bun:test";
import { isLoopback } from "./index.ts";

test("loopback addresses, v4, v6 and v4-mapped, and nothing else", () => {
  for (const a of ["127.0.0.1", "127.1.2.3", "::1", "::ffff:127.0.0.1"]) expect(isLoopback(a)).toBe(true);
  for (const a of ["10.0.0.1", "::", "::ffff:10.0.0.1", "128.0.0.1", "", undefined])
    expect(isLoopback(a)).toBe(false);
});
