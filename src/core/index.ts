/**
 * The leaf every other folder may import, importing nothing of Skein:
 * types, errors, input checks, the one JSON check, job ids, the clock and
 * the logger interface.
 */
export * from "./types";
export * from "./errors";
export * from "./checks";
export { storableJson, isPlainObject, type JsonMode } from "./json";
export { newJobId } from "./ids";
export { systemClock, sleep, backoffMs, type Clock } from "./clock";
export { createLogger, silentLogger, withFields, winstonLogger, type Logger, type LogFields, type LogLevel, type LoggerOptions } from "./logger";
