/**
 * Skein: a dependency-aware job manager for Node.js on PostgreSQL.
 * @packageDocumentation
 */
export { createPrismaClient, migrate, MigrationError, refreshPlannerStatistics, startEmbeddedDatabase, PrismaClient } from "./db";
export type { EmbeddedDatabase, EmbeddedDatabaseOptions, MigrateOptions, MigrateResult, PrismaClientOptions, RawQueryClient, StatisticsRefresh } from "./db";
export * from "./jobs";
export { createLogger, silentLogger, type Logger, type LoggerOptions, type LogLevel } from "./logging";
export * from "./worker";
export { parseRateLimitSpec, type JobExplanation, type RateLimit, type RateLimitOptions, type WaitReason } from "./limits";
export { nextCronTime, type CatchUpPolicy, type CreateScheduleInput, type Schedule } from "./schedules";
