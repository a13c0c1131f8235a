import { expect, test } from "bun:test";
import { defaultRoleFor } from "./index.ts";
import { roleAllows, sha256Hex } from "./tokens.ts";

test("reads need viewer, commands operator, token administration admin", () => {
  expect(defaultRoleFor("GET", "/v1/releases")).toBe("viewer");
  expect(defaultRoleFor("POST", "/v1/releases/r/start")).toBe("operator");
  expect(defaultRoleFor("POST", "/v1/tokens")).toBe("admin");
  expect(defaultRoleFor("GET", "/v1/tokens")).toBe("admin");
});

test("roles are ordered viewer < operator < admin", () => {
  expect(roleAllows("admin", "operator")).toBe(true);
  expect(roleAllows("operator", "operator")).toBe(true);
  expect(roleAllows("viewer", "operator")).toBe(false);
  expect(roleAllows("operator", "admin")).toBe(false);
});

test("tokens are stored as their SHA-256", () => {
  expect(sha256Hex("abc")).toBe("ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
});
