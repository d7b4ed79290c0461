import { ValidationError } from "./errors";

/** Limits on what a job and its names may carry, shared by validation, the API's schemas and the database. */
export const LIMITS = {
  idLength: 255,
  nameLength: 1000,
  descriptionLength: 100_000,
  payloadBytes: 16 * 1024 * 1024,
  jsonDepth: 100,
  dependencies: 100_000,
  maxRetries: 1000,
  timeoutSeconds: 7 * 24 * 3600,
  /** Queue names, tenants, rate-limit and concurrency keys, tags. */
  keyLength: 255,
  tags: 100,
} as const;

/** The largest PostgreSQL `integer`. */
export const INT4_MAX = 2_147_483_647;

/** A value named for an error message: strings quoted, other values by type. */
export function describe(value: unknown): string {
  if (typeof value === "string") return JSON.stringify(value);
  if (value === undefined) return "nothing";
  return typeof value;
}

const LONE_SURROGATE = /[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/;

/** Throws unless PostgreSQL stores the string exactly as given: no NUL, no lone UTF-16 surrogate. */
export function checkStorableString(value: string, field: string): void {
  if (value.includes("\u0000")) throw new ValidationError(field, "must not contain the NUL character (\\u0000), which PostgreSQL cannot store");
  if (LONE_SURROGATE.test(value)) throw new ValidationError(field, "contains a lone UTF-16 surrogate, which is not valid Unicode");
}

/** Text PostgreSQL stores exactly as given, at most `maxLength` characters, empty only if allowed. */
export function checkText(value: unknown, field: string, maxLength: number, allowEmpty: boolean): string {
  if (typeof value !== "string") throw new ValidationError(field, `must be a string (got ${describe(value)})`);
  if (!allowEmpty && value.trim() === "") throw new ValidationError(field, "must not be empty");
  if (value.length > maxLength) throw new ValidationError(field, `must be at most ${maxLength} characters (got ${value.length})`);
  checkStorableString(value, field);
  return value;
}

/** An integer in [min, max], or `fallback` when absent. */
export function checkInteger(value: unknown, field: string, fallback: number, min: number, max: number): number {
  if (value === undefined || value === null) return fallback;
  if (typeof value !== "number" || !Number.isInteger(value)) throw new ValidationError(field, `must be an integer (got ${describe(value)}${typeof value === "number" ? ` ${value}` : ""})`);
  if (value < min || value > max) throw new ValidationError(field, `must be between ${min} and ${max} (got ${value})`);
  return value;
}

/** A list of tags (distinct, sorted). */
export function checkTags(value: unknown, field: string): string[] {
  if (value === undefined || value === null) return [];
  if (!Array.isArray(value)) throw new ValidationError(field, "must be an array of strings");
  if (value.length > LIMITS.tags) throw new ValidationError(field, `must list at most ${LIMITS.tags} tags (got ${value.length})`);
  return [...new Set(value.map((tag, i) => checkText(tag, `${field}[${i}]`, LIMITS.keyLength, false)))].sort();
}

/** A listing's limit: 1 to 100,000, default 100. */
export function checkLimit(limit: number | undefined): number {
  if (limit === undefined) return 100;
  if (!Number.isInteger(limit) || limit < 1 || limit > 100_000) throw new ValidationError("limit", "must be an integer from 1 to 100000");
  return limit;
}

/** A point in time from a Date or an ISO 8601 string. */
export function checkTime(value: Date | string, field: string): Date {
  const date = value instanceof Date ? value : new Date(value);
  if (Number.isNaN(date.getTime())) throw new ValidationError(field, "must be a valid Date or ISO 8601 string");
  return date;
}
