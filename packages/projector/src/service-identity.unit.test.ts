import { expect, test } from "bun:test";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { parseServiceRules, ServiceIdentity, serviceRulesFile } from "./service-identity.ts";

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
  // an IPv6 callee in brackets: "fd00::2:8080" reads as an address without a port
  expect(ids.callee({ agentId: "a", port: 8080, address: "fd00::2" })).toBe("[fd00::2]:8080");
  // A rule naming a port never names a caller: its port is ephemeral.
  expect(ids.caller(at("envoy", 443))).toBe("envoy");
});

test("a callee called at a virtual IP is named by that address; a caller by its own address", () => {
  const k8s = new ServiceIdentity([
    { service: "payment", address: "10.96.0.10", port: 80 },
    { service: "checkout-pod", address: "10.244.1.7" },
  ]);
  expect(k8s.callee({ agentId: "a", port: 80, address: "10.96.0.10" })).toBe("payment");
  expect(k8s.callee({ agentId: "a", port: 80, address: "10.96.0.11" })).toBe("10.96.0.11:80");
  expect(k8s.caller({ agentId: "a", comm: "node", port: 40000, address: "10.244.1.7" })).toBe("checkout-pod");
});

test("rules files are validated field by field", () => {
  const rules = [
    { service: "x", port: 1 },
    { service: "y", cgroupId: "4242", comm: "java", agentId: "node-1" },
    { service: "z", address: "fd00::a" },
  ];
  expect(parseServiceRules(JSON.stringify(rules))).toEqual(rules);
  expect(() => parseServiceRules("{}")).toThrow("must be a JSON array");
  expect(() => parseServiceRules("[3]")).toThrow("service rule 0 is not an object");
  expect(() => parseServiceRules('[{"port":1}]')).toThrow('service rule 0 needs a "service" string');
  expect(() => parseServiceRules('[{"service":"x","port":"8080"}]')).toThrow(
    'service rule 0: "port" must be an integer 1–65535, got "8080"',
  );
  expect(() => parseServiceRules('[{"service":"x","port":1},{"service":"y","prot":2}]')).toThrow(
    'service rule 1: unknown field "prot"',
  );
  expect(() => parseServiceRules('[{"service":"x","cgroupId":4242}]')).toThrow(
    '"cgroupId" must be a string of digits',
  );
  expect(() => parseServiceRules('[{"service":"x","address":"FD00::A"}]')).toThrow('"address" must be');
  expect(() => parseServiceRules('[{"service":"x","agentId":"n"}]')).toThrow(
    'service rule 0 ("x") matches nothing: give comm, cgroupId, port or address',
  );
});

test("a rules file is read when it appears and again when it changes; a broken one keeps the rules in force", () => {
  const dir = mkdtempSync(join(tmpdir(), "indigo-rules-"));
  const file = join(dir, "rules.json");
  const logged: string[] = [];
  const ids = new ServiceIdentity(
    [],
    serviceRulesFile(file, (l) => logged.push(l), 0),
  );
  const b = at("hop_b", 40000);
  try {
    expect(ids.callee(at(undefined, 8083))).toBe("10.0.0.2:8083"); // no file yet: defaults
    writeFileSync(file, JSON.stringify([{ service: "hop-c", port: 8083 }]));
    expect(ids.callee(at(undefined, 8083))).toBe("hop-c");
    writeFileSync(
      file,
      JSON.stringify([
        { service: "hop-b", comm: "hop_b" },
        { service: "hop-c", port: 8083 },
      ]),
    );
    expect(ids.caller(b)).toBe("hop-b");
    writeFileSync(file, "[{");
    expect(ids.caller(b)).toBe("hop-b");
    expect(logged.at(-1)).toContain("not used");
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
