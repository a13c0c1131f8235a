// Bearer-token authentication and role checks. Reads (GET/HEAD) need viewer, commands operator, token
// administration admin. The principal is put on the context as `principal` for handlers (the actor).
import { type Database, msSetting } from "@indigo/db";
import type { MiddlewareHandler } from "hono";
import { ProblemError } from "../problem.ts";
import { PrincipalCache } from "./principal-cache.ts";
import { type Principal, principalOfHash, type Role, roleAllows, sha256Hex } from "./tokens.ts";

declare module "hono" {
  interface ContextVariableMap {
    principal: Principal;
  }
}

export interface BearerAuthOptions {
  readonly db: Database;
  /** The role a request needs; by default viewer for reads, operator for everything else. */
  readonly roleFor?: (method: string, path: string) => Role;
  /** Verified tokens, trusted without asking the database again for INDIGO_TOKEN_CACHE_MS (5 s by default;
   * 0 = never); shared with the token routes, which forget a token they revoke. */
  readonly cache?: PrincipalCache;
}

export const principalCacheFromEnv = (): PrincipalCache =>
  new PrincipalCache(msSetting(process.env, "INDIGO_TOKEN_CACHE_MS", 5000, 0));

const TOKEN = /^Bearer ([A-Za-z0-9._~+/=-]{1,200})$/;
const CHALLENGE = { "www-authenticate": 'Bearer realm="indigo"' };

export const defaultRoleFor = (method: string, path: string): Role => {
  if (path.startsWith("/v1/tokens")) return "admin";
  return method === "GET" || method === "HEAD" ? "viewer" : "operator";
};

export function bearerAuth(options: BearerAuthOptions): MiddlewareHandler {
  const roleFor = options.roleFor ?? defaultRoleFor;
  const cache = options.cache ?? principalCacheFromEnv();
  const principalOf = (token: string) => {
    const hash = sha256Hex(token);
    return cache.get(hash, () => principalOfHash(options.db, hash));
  };
  return async function bearerAuthMiddleware(c, next) {
    const header = c.req.header("authorization");
    if (header === undefined) {
      throw new ProblemError(
        "unauthorized",
        401,
        "an Authorization: Bearer <token> header is required",
        {},
        CHALLENGE,
      );
    }
    const match = TOKEN.exec(header);
    const principal = match?.[1] ? await principalOf(match[1]) : null;
    if (!principal)
      throw new ProblemError("unauthorized", 401, "the bearer token is not valid", {}, CHALLENGE);
    const need = roleFor(c.req.method, c.req.path);
    if (!roleAllows(principal.role, need)) {
      throw new ProblemError(
        "forbidden",
        403,
        `token "${principal.name}" has role ${principal.role}; ${c.req.method} ${c.req.path} needs ${need}`,
      );
    }
    c.set("principal", principal);
    await next();
  };
}
