export { createPrismaClient, PrismaClient, type PrismaClientOptions } from "./client";
export { migrate, migrationScript, MigrationError, DEFAULT_MIGRATIONS_DIR, type MigrateOptions, type MigrateResult, type MigrationScriptOptions } from "./migrator";
export { DEFAULT_SCHEMA, checkSchemaName, SkeinSchema } from "./schema";
export { startEmbeddedDatabase, EmbeddedDatabaseError, type EmbeddedDatabase, type EmbeddedDatabaseOptions } from "./embedded";
export { databaseFor, type Database, type RawQueryClient, type Sql } from "./database";
export { refreshPlannerStatistics, type StatisticsRefresh } from "./statistics";
