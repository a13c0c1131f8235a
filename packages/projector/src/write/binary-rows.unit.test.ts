import { expect, test } from "bun:test";
import { BinaryRows } from "./binary-rows.ts";

const values = [
  { id: "a", n: 1, at: 1_700_000_000_000, event: Uint8Array.of(1, 2, 3) },
  { id: "bb-é", n: -2, at: 0, event: new Uint8Array(0) },
  { id: "ccc", n: 2 ** 31 - 1, at: 946_684_800_001, event: new Uint8Array(300).fill(7) },
];

function build(order: readonly number[], grow = 16): BinaryRows {
  const rows = new BinaryRows(grow);
  for (const i of order) {
    const v = values[i]!;
    rows.row(4).text(v.id).int4(v.n).timestamptz(v.at).bytea(v.event);
  }
  return rows;
}

test("endInOrder gives the bytes of the rows added in that order", () => {
  for (const order of [
    [0, 1, 2],
    [2, 0, 1],
    [1, 2, 0],
    [2, 1, 0],
  ]) {
    const permuted = build([0, 1, 2]).endInOrder(Uint32Array.from(order));
    expect(permuted).toEqual(build(order).end());
  }
});

test("endInOrder keeps every row when the row table grows, and refuses an order of another length", () => {
  const many = new BinaryRows(16);
  for (let i = 0; i < 3000; i++) many.row(1).int4(i);
  const reversed = Uint32Array.from({ length: 3000 }, (_, i) => 2999 - i);
  const expected = new BinaryRows(16);
  for (let i = 2999; i >= 0; i--) expected.row(1).int4(i);
  expect(many.endInOrder(reversed)).toEqual(expected.end());
  expect(() => build([0, 1]).endInOrder(Uint32Array.of(0))).toThrow("1 row numbers for 2 rows");
  expect(new BinaryRows().endInOrder(new Uint32Array(0)).length).toBe(0);
});
