/**
 * Skein: a dependency-aware job manager for Node.js on PostgreSQL.
 * @packageDocumentation
 */
export { createPrismaClient, migrate, migrationScript, MigrationError, refreshPlannerStatistics, startEmbeddedDatabase, EmbeddedDatabaseError, PrismaClient, DEFAULT_SCHEMA } from "./db";
export type { EmbeddedDatabase, EmbeddedDatabaseOptions, MigrateOptions, MigrateResult, MigrationScriptOptions, PrismaClientOptions, RawQueryClient, StatisticsRefresh } from "./db";
export * from "./jobs";
export { createLogger, silentLogger, winstonLogger, withFields, type Logger, type LogFields, type LoggerOptions, type LogLevel } from "./core/logger";
export * from "./worker";
export { parseRateLimitSpec, type JobExplanation, type RateLimit, type RateLimitOptions, type WaitReason } from "./limits";
export { nextCronTime, type CatchUpPolicy, type CreateScheduleInput, type Schedule } from "./schedules";
