import winston from "winston";

/** Structured fields of a log line (`workerId`, `jobId`, `error`, ...). */
export type LogFields = Record<string, unknown>;

/**
 * Where Skein's parts log: four methods, each with a message and fields. Any
 * logger with these methods fits (winston's and pino's do, through
 * {@link winstonLogger} or a few lines); {@link withFields} adds fields such
 * as `workerId` and `jobId` to every line of a part.
 */
export interface Logger {
  debug(message: string, fields?: LogFields): void;
  info(message: string, fields?: LogFields): void;
  warn(message: string, fields?: LogFields): void;
  error(message: string, fields?: LogFields): void;
}

/** Log levels Skein uses, most severe first. */
export type LogLevel = "error" | "warn" | "info" | "debug";

const LEVELS: readonly LogLevel[] = ["error", "warn", "info", "debug"];

/** A logger that writes nothing: the default for library objects given no logger. */
export function silentLogger(): Logger {
  const none = () => undefined;
  return { debug: none, info: none, warn: none, error: none };
}

/** A logger that adds `fields` to every line of `logger` (a line's own fields win). */
export function withFields(logger: Logger, fields: LogFields): Logger {
  const merged = (extra?: LogFields) => (extra ? { ...fields, ...extra } : fields);
  return {
    debug: (message, extra) => logger.debug(message, merged(extra)),
    info: (message, extra) => logger.info(message, merged(extra)),
    warn: (message, extra) => logger.warn(message, merged(extra)),
    error: (message, extra) => logger.error(message, merged(extra)),
  };
}

/** Wraps a winston logger as a {@link Logger}; a level winston would drop costs no formatting. */
export function winstonLogger(w: winston.Logger): Logger {
  const at = (level: LogLevel) => (message: string, fields?: LogFields) => {
    if (w.isLevelEnabled(level)) w.log(level, message, fields ?? {});
  };
  return { debug: at("debug"), info: at("info"), warn: at("warn"), error: at("error") };
}

/** Options for {@link createLogger}. */
export interface LoggerOptions {
  /** Most verbose level written. @defaultValue "info" */
  level?: LogLevel;
  /** `json`: one JSON object a line; `pretty`: readable lines for a terminal. @defaultValue "json" */
  format?: "json" | "pretty";
  /** Where lines go. @defaultValue the process's stderr */
  stream?: NodeJS.WritableStream;
}

/** The default {@link Logger}: winston, writing JSON lines (or readable ones) to a stream. */
export function createLogger(options: LoggerOptions = {}): Logger {
  const level = options.level ?? "info";
  if (!LEVELS.includes(level)) throw new Error(`unknown log level ${JSON.stringify(level)}`);
  const format =
    options.format === "pretty"
      ? winston.format.combine(
          winston.format.timestamp({ format: "HH:mm:ss.SSS" }),
          winston.format.printf(({ level: shown, message, timestamp, ...meta }) => {
            const fields = Object.entries(meta)
              .map(([key, value]) => `${key}=${typeof value === "string" ? value : JSON.stringify(value)}`)
              .join(" ");
            return `${String(timestamp)} ${shown.padEnd(5)} ${String(message)}${fields ? ` ${fields}` : ""}`;
          }),
        )
      : winston.format.combine(winston.format.timestamp(), winston.format.json());
  return winstonLogger(winston.createLogger({ level, format, transports: [new winston.transports.Stream({ stream: options.stream ?? process.stderr })] }));
}
