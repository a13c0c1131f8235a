// /v1/tokens (admin): issue a bearer token; the secret is shown once, only its SHA-256 is kept.
import { createRoute, type OpenAPIHono, z } from "@hono/zod-openapi";
import type { Database } from "@indigo/db";
import { createToken } from "../auth/tokens.ts";
import { CreateTokenSchema } from "../schemas.ts";
import { problems } from "./releases.ts";

export function tokenRoutes(app: OpenAPIHono, db: Database): void {
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
      return c.json({ id, name, role, token }, 201);
    },
  );
}
