import winston from "winston";

/** Skein's logger: a winston logger. Child loggers carry `workerId` and `jobId`. */
export type Logger = winston.Logger;

/** Log levels Skein uses, most severe first. */
export type LogLevel = "error" | "warn" | "info" | "debug";

/** Options for {@link createLogger}. */
export interface LoggerOptions {
  /** Most verbose level written. @defaultValue "info" */
  level?: LogLevel;
  /** `json`: one JSON object a line; `pretty`: readable lines for a terminal. @defaultValue "json" */
  format?: "json" | "pretty";
  /** Where lines go. @defaultValue the process's stderr */
  stream?: NodeJS.WritableStream;
}

/** Creates the winston logger that all of Skein's parts log through. */
export function createLogger(options: LoggerOptions = {}): Logger {
  const format =
    options.format === "pretty"
      ? winston.format.combine(
          winston.format.timestamp({ format: "HH:mm:ss.SSS" }),
          winston.format.printf(({ level, message, timestamp, ...meta }) => {
            const fields = Object.entries(meta)
              .map(([key, value]) => `${key}=${typeof value === "string" ? value : JSON.stringify(value)}`)
              .join(" ");
            return `${String(timestamp)} ${level.padEnd(5)} ${String(message)}${fields ? ` ${fields}` : ""}`;
          }),
        )
      : winston.format.combine(winston.format.timestamp(), winston.format.json());
  return winston.createLogger({
    level: options.level ?? "info",
    format,
    transports: [new winston.transports.Stream({ stream: options.stream ?? process.stderr })],
  });
}

/** A logger that writes nothing: the default for library objects given no logger. */
export function silentLogger(): Logger {
  return winston.createLogger({ silent: true, transports: [new winston.transports.Console({ silent: true })] });
}
