// `./dev token [--role viewer|operator|admin] [--name NAME]`: issues an API token and prints it (only its
// SHA-256 is stored). Admin by default. `./dev token --list` prints every token (id, name, role, created,
// revoked; never a secret); `./dev token --revoke ID` revokes one — from the host, for when no admin token is
// at hand (the only one leaked). Needs the migrated database (`./dev up`).
import { parseArgs } from "node:util";
import { openDatabase } from "@indigo/db";
import { createToken, isRole, listTokens, revokeToken } from "../auth/tokens.ts";

const { values } = parseArgs({
  options: {
    role: { type: "string", default: "admin" },
    name: { type: "string" },
    list: { type: "boolean", default: false },
    revoke: { type: "string" },
  },
});
const role = values.role ?? "admin";
if (!isRole(role)) {
  console.error(`token: error: --role must be viewer, operator or admin, got "${role}"`);
  process.exit(2);
}
const name = values.name ?? `${process.env.USER ?? "cli"}-${role}-${new Date().toISOString().slice(0, 10)}`;
const database = openDatabase(undefined, 1);
try {
  if (values.list) {
    for (const t of await listTokens(database.db)) {
      const revoked = t.revokedAt ? `revoked ${t.revokedAt.toISOString()}` : "active";
      console.log(`${t.id}\t${t.name}\t${t.role}\t${t.createdAt.toISOString()}\t${revoked}`);
    }
  } else if (values.revoke !== undefined) {
    const revoked = await revokeToken(database.db, values.revoke);
    if (!revoked) {
      console.error(`token: error: no token ${values.revoke} (./dev token --list shows them)`);
      process.exitCode = 1;
    } else {
      console.error(
        `token: ${revoked.id} ("${revoked.name}") revoked at ${revoked.revokedAt?.toISOString()}`,
      );
    }
  } else {
    const { token } = await createToken(database.db, name, role);
    console.log(token);
    console.error(`token: issued "${name}" with role ${role}; it is not shown again`);
  }
} catch (error) {
  console.error(`token: error: ${error instanceof Error ? error.message : String(error)}`);
  process.exitCode = 1;
} finally {
  await database.close();
}
