// Deploy step: the application's migrations first (as always), then Skein's, into schema "skein".
import { migrate } from "skein";
import { databaseUrl, SKEIN_SCHEMA } from "./database.ts";
import { prismaMigrateDeploy } from "./prisma-migrate-deploy.ts";

const database = await databaseUrl();
try {
  const appMigrations = await prismaMigrateDeploy(database.url); // in your app: npx prisma migrate deploy
  console.log(`application migrations applied: ${appMigrations.length === 0 ? "none (up to date)" : appMigrations.join(", ")}`);
  const skein = await migrate(database.url, { schema: SKEIN_SCHEMA }); // or: npx init-worker --schema skein
  console.log(`Skein migrations applied to schema ${skein.schema}: ${skein.applied.length === 0 ? "none (up to date)" : skein.applied.length}`);
} finally {
  await database.stop();
}
