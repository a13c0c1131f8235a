import { defineConfig } from "drizzle-kit";

export default defineConfig({
  dialect: "postgresql",
  schema: "./src/schema.ts",
  out: "./migrations",
  dbCredentials: {
    url: process.env.INDIGO_DATABASE_URL ?? "postgres://indigo:indigo@127.0.0.1:15432/indigo",
  },
});
