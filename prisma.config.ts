// Configuration for the Prisma CLI (developers only: `npm run prisma:generate`,
// and `prisma migrate deploy` for users who have Prisma's schema engine).
// Skein itself never runs the CLI; it applies prisma/migrations with its own migrator.
import { defineConfig } from "prisma/config";

export default defineConfig({
  schema: "prisma/schema.prisma",
  migrations: { path: "prisma/migrations" },
  datasource: { url: process.env.DATABASE_URL ?? "postgresql://localhost:5432/skein" },
});
