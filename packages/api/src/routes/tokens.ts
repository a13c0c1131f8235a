// /v1/tokens (admin): issue a bearer token (the secret is shown once, only its SHA-256 is kept), list the
// tokens, revoke one. A revoked token is refused at once by this process (and by any other where it was not
// used in the last INDIGO_TOKEN_CACHE_MS), and by every process after that (auth/principal-cache.ts).
import { createRoute, type OpenAPIHono, z } from "@hono/zod-openapi";
import type { Database } from "@indigo/db";
import type { PrincipalCache } from "../auth/principal-cache.ts";
import { createToken, listTokens, revokeToken, type TokenInfo } from "../auth/tokens.ts";
import { ProblemError } from "../problem.ts";
import { CreateTokenSchema } from "../schemas.ts";
import { problems } from "./releases.ts";

const TokenSchema = z
  .object({
    id: z.string(),
    name: z.string(),
    role: z.string(),
    createdAt: z.string(),
    revokedAt: z.string().nullable(),
  })
  .openapi("Token");

const view = (t: TokenInfo): z.infer<typeof TokenSchema> => ({
  id: t.id,
  name: t.name,
  role: t.role,
  createdAt: t.createdAt.toISOString(),
  revokedAt: t.revokedAt?.toISOString() ?? null,
});

export function tokenRoutes(
  app: OpenAPIHono,
  db: Database,
  principals: PrincipalCache,
  log: (line: string) => void,
): void {
  app.openapi(
    createRoute({
      method: "post",
      path: "/v1/tokens",
      tags: ["auth"],
      summary: "Issue a token (admin); the token is in the answer only",
      request: { body: { required: true, content: { "application/json": { schema: CreateTokenSchema } } } },
      responses: {
        201: {
          description: "issued",
          content: {
            "application/json": {
              schema: z.object({ id: z.string(), name: z.string(), role: z.string(), token: z.string() }),
            },
          },
        },
        ...problems(400, 401, 403, 413, 415),
      },
    }),
    async (c) => {
      const { name, role } = c.req.valid("json");
      const { id, token } = await createToken(db, name, role);
      log(`token ${id} (${name}, ${role}) issued by ${c.get("principal").name}`);
      return c.json({ id, name, role, token }, 201);
    },
  );

  app.openapi(
    createRoute({
      method: "get",
      path: "/v1/tokens",
      tags: ["auth"],
      summary: "Every token, revoked ones included (admin); never the secret",
      responses: {
        200: {
          description: "the tokens, oldest first",
          content: { "application/json": { schema: z.object({ tokens: z.array(TokenSchema) }) } },
        },
        ...problems(401, 403),
      },
    }),
    async (c) => c.json({ tokens: (await listTokens(db)).map(view) }, 200),
  );

  app.openapi(
    createRoute({
      method: "delete",
      path: "/v1/tokens/{id}",
      tags: ["auth"],
      summary: "Revoke a token (admin); revoking it again changes nothing",
      request: { params: z.object({ id: z.string().max(100) }) },
      responses: {
        200: { description: "the token, revoked", content: { "application/json": { schema: TokenSchema } } },
        ...problems(400, 401, 403, 404),
      },
    }),
    async (c) => {
      const { id } = c.req.valid("param");
      const revoked = await revokeToken(db, id);
      if (!revoked) throw new ProblemError("notFound", 404, `no token ${id}`);
      principals.forget(revoked.sha256);
      log(`token ${id} (${revoked.name}) revoked by ${c.get("principal").name}`);
      return c.json(view(revoked), 200);
    },
  );
}
