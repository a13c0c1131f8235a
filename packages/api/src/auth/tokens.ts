// API tokens: random 32 bytes shown once as `indigo_<base64url>`; only their SHA-256 is stored.
import { type Database, schema } from "@indigo/db";
import { and, eq, isNull } from "drizzle-orm";

export const ROLES = ["viewer", "operator", "admin"] as const;
export type Role = (typeof ROLES)[number];

const RANK: Record<Role, number> = { viewer: 0, operator: 1, admin: 2 };
export const roleAllows = (have: Role, need: Role): boolean => RANK[have] >= RANK[need];

export const isRole = (x: string): x is Role => (ROLES as readonly string[]).includes(x);

export function sha256Hex(text: string): string {
  return new Bun.CryptoHasher("sha256").update(text).digest("hex");
}

export interface Principal {
  readonly name: string;
  readonly role: Role;
}

export async function createToken(
  db: Database,
  name: string,
  role: Role,
): Promise<{ token: string; id: string }> {
  const token = `indigo_${Buffer.from(crypto.getRandomValues(new Uint8Array(32))).toString("base64url")}`;
  const id = `tok_${crypto.randomUUID()}`;
  await db.insert(schema.apiTokens).values({ id, name, role, sha256: sha256Hex(token) });
  return { token, id };
}

export function principalOf(db: Database, token: string): Promise<Principal | null> {
  return principalOfHash(db, sha256Hex(token));
}

/** The unrevoked token whose SHA-256 is `hash`, if any. */
export async function principalOfHash(db: Database, hash: string): Promise<Principal | null> {
  const t = schema.apiTokens;
  const [row] = await db
    .select({ name: t.name, role: t.role })
    .from(t)
    .where(and(eq(t.sha256, hash), isNull(t.revokedAt)))
    .limit(1);
  if (!row || !isRole(row.role)) return null;
  return { name: row.name, role: row.role };
}
