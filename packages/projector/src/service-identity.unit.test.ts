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
  // A rule naming a port never names a caller: its port is ephemeral.
  expect(ids.caller(at("envoy", 443))).toBe("envoy");
});

test("rules files are validated", () => {
  expect(parseServiceRules('[{"service":"x","port":1}]')).toEqual([{ service: "x", port: 1 }]);
  expect(() => parseServiceRules("{}")).toThrow("must be a JSON array");
  expect(() => parseServiceRules('[{"port":1}]')).toThrow('service rule 0 needs a "service" string');
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
