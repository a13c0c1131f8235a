// `./dev token [--role viewer|operator|admin] [--name NAME]`: issues an API token and prints it (only its
// SHA-256 is stored). Admin by default. Needs the migrated database (`./dev up`).
import { parseArgs } from "node:util";
import { openDatabase } from "@indigo/db";
import { createToken, isRole } from "../auth/tokens.ts";

const { values } = parseArgs({
  options: { role: { type: "string", default: "admin" }, name: { type: "string" } },
});
const role = values.role ?? "admin";
if (!isRole(role)) {
  console.error(`token: error: --role must be viewer, operator or admin, got "${role}"`);
  process.exit(2);
}
const name = values.name ?? `${process.env.USER ?? "cli"}-${role}-${new Date().toISOString().slice(0, 10)}`;
const database = openDatabase(undefined, 1);
try {
  const { token } = await createToken(database.db, name, role);
  console.log(token);
  console.error(`token: issued "${name}" with role ${role}; it is not shown again`);
} catch (error) {
  console.error(
    `token: error: failed to issue a token: ${error instanceof Error ? error.message : String(error)}`,
  );
  process.exitCode = 1;
} finally {
  await database.close();
}
