import { expect, test } from "bun:test";
import { addressText, endpointText } from "@indigo/bus/addresses";
import { ServiceIdentity } from "../service-identity.ts";
import { BatchNames } from "./names.ts";

const v6 = (...groups: number[]) => new Uint8Array(groups.flatMap((g) => [g >> 8, g & 0xff]));

test("IPv4 is dotted; a v4-mapped IPv6 address is the IPv4 address it maps, so both ends of a connection agree", () => {
  expect(addressText(new Uint8Array([10, 172, 2, 2]))).toBe("10.172.2.2");
  expect(addressText(v6(0, 0, 0, 0, 0, 0xffff, 0x0aac, 0x0202))).toBe("10.172.2.2");
  const names = new BatchNames(new ServiceIdentity([]), "node-1");
  expect(names.address(v6(0, 0, 0, 0, 0, 0xffff, 0x0aac, 0x0202))).toBe("10.172.2.2");
  expect(names.address(new Uint8Array([10, 172, 2, 2]))).toBe("10.172.2.2");
  // Not mapped: ::ffff with anything non-zero before it, or the IPv4-compatible ::a.b.c.d form.
  expect(addressText(v6(0, 0, 0, 0, 1, 0xffff, 0x0aac, 0x0202))).toBe("::1:ffff:aac:202");
  expect(addressText(v6(0, 0, 0, 0, 0, 0, 0x0aac, 0x0202))).toBe("::aac:202");
});

test("other IPv6 addresses are in RFC 5952 form", () => {
  expect(addressText(v6(0x2001, 0xdb8, 0, 0, 0, 0, 0, 1))).toBe("2001:db8::1");
  expect(addressText(v6(0, 0, 0, 0, 0, 0, 0, 0))).toBe("::");
  expect(addressText(v6(0, 0, 0, 0, 0, 0, 0, 1))).toBe("::1");
  expect(addressText(v6(0xfd00, 0, 0, 0, 0, 0, 0, 0))).toBe("fd00::");
  // one zero group stays; of two equal runs the first is shortened
  expect(addressText(v6(0x2001, 0xdb8, 0, 1, 1, 1, 1, 1))).toBe("2001:db8:0:1:1:1:1:1");
  expect(addressText(v6(0x2001, 0, 0, 1, 0, 0, 1, 1))).toBe("2001::1:0:0:1:1");
  expect(addressText(v6(0x2001, 0, 0, 1, 0, 0, 0, 1))).toBe("2001:0:0:1::1");
  expect(addressText(new Uint8Array(5))).toBe("?");
});

test("an endpoint is address:port, an IPv6 address in brackets (RFC 5952, section 6)", () => {
  expect(endpointText("10.0.0.2", 8080)).toBe("10.0.0.2:8080");
  expect(endpointText("fd00::2", 8080)).toBe("[fd00::2]:8080");
  expect(endpointText("::", 0)).toBe("[::]:0"); // an unbound socket's local end, at connect
});
