export { createPrismaClient, PrismaClient, type PrismaClientOptions } from "./client";
export { migrate, MigrationError, DEFAULT_MIGRATIONS_DIR, type MigrateOptions, type MigrateResult } from "./migrator";
export { startEmbeddedDatabase, type EmbeddedDatabase, type EmbeddedDatabaseOptions } from "./embedded";
export { databaseFor, type Database, type RawQueryClient, type Sql } from "./database";
export { refreshPlannerStatistics, type StatisticsRefresh } from "./statistics";
