// API tokens: random 32 bytes shown once as `indigo_<base64url>`; only their SHA-256 is stored.
import { type Database, schema } from "@indigo/db";
import { and, asc, eq, isNull } from "drizzle-orm";

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

/** What an admin may know of a token: never the secret or its hash. */
export interface TokenInfo {
  readonly id: string;
  readonly name: string;
  readonly role: string;
  readonly createdAt: Date;
  readonly revokedAt: Date | null;
}

const INFO = {
  id: schema.apiTokens.id,
  name: schema.apiTokens.name,
  role: schema.apiTokens.role,
  createdAt: schema.apiTokens.createdAt,
  revokedAt: schema.apiTokens.revokedAt,
};

export function listTokens(db: Database): Promise<TokenInfo[]> {
  return db
    .select(INFO)
    .from(schema.apiTokens)
    .orderBy(asc(schema.apiTokens.createdAt), asc(schema.apiTokens.id));
}

/** Revokes the token `id` (again: its first revocation stands); null when there is no such token. With its
 * SHA-256, for the principal cache to forget, not for anyone to see. */
export async function revokeToken(
  db: Database,
  id: string,
): Promise<(TokenInfo & { readonly sha256: string }) | null> {
  const t = schema.apiTokens;
  await db
    .update(t)
    .set({ revokedAt: new Date() })
    .where(and(eq(t.id, id), isNull(t.revokedAt)));
  const [row] = await db
    .select({ ...INFO, sha256: t.sha256 })
    .from(t)
    .where(eq(t.id, id))
    .limit(1);
  return row ?? null;
}
