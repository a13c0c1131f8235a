import { expect, test } from "bun:test";
import { parseServiceRules, ServiceIdentity } from "./service-identity.ts";

const ids = new ServiceIdentity([
  { service: "checkout", comm: "checkout-svc" },
  { service: "payment", port: 9090 },
  { service: "edge", comm: "envoy", port: 443 },
]);
const at = (comm: string | undefined, port: number) => ({ agentId: "a", comm, port, address: "10.0.0.2" });

test("callers by comm, callees by listening port, defaults otherwise", () => {
  expect(ids.caller(at("checkout-svc", 40123))).toBe("checkout");
  expect(ids.caller(at("python3", 40123))).toBe("python3");
  expect(ids.callee(at(undefined, 9090))).toBe("payment");
  expect(ids.callee(at(undefined, 8080))).toBe("10.0.0.2:8080");
  // A rule naming a port never names a caller: its port is ephemeral.
  expect(ids.caller(at("envoy", 443))).toBe("envoy");
});

test("rules files are validated", () => {
  expect(parseServiceRules('[{"service":"x","port":1}]')).toEqual([{ service: "x", port: 1 }]);
  expect(() => parseServiceRules("{}")).toThrow("must be a JSON array");
  expect(() => parseServiceRules('[{"port":1}]')).toThrow('service rule 0 needs a "service" string');
});
