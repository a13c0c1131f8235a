import { expect, test } from "bun:test";
import { LineBuffer } from "./line-buffer.ts";

test("lines pushed in one pass go out in one write, in order, after the pass", async () => {
  const writes: string[] = [];
  const b = new LineBuffer({ write: (c) => writes.push(c) });
  for (let i = 0; i < 5; i++) b.push(`${i}\n`);
  expect(writes).toEqual([]);
  await new Promise((r) => setImmediate(r));
  expect(writes).toEqual(["0\n1\n2\n3\n4\n"]);
  b.push("5\n");
  b.flush();
  expect(writes).toEqual(["0\n1\n2\n3\n4\n", "5\n"]);
});

test("a full buffer is written at once; flush with nothing pending writes nothing", () => {
  const writes: string[] = [];
  const b = new LineBuffer({ write: (c) => writes.push(c) }, 8);
  b.push("abcd\n");
  b.push("efgh\n");
  expect(writes).toEqual(["abcd\nefgh\n"]);
  b.flush();
  expect(writes.length).toBe(1);
});
