import { createHash } from "node:crypto";
import type pg from "pg";
import type { QueryOptions } from "./database";
import { SKEIN_TYPES } from "./parsers";

const statementNames = new Map<string, string>();

/** A stable name for a statement's text (the same text on every connection gets the same name). */
function statementName(text: string): string {
  let name = statementNames.get(text);
  if (!name) {
    name = `skein_${createHash("sha1").update(text).digest("hex").slice(0, 16)}`;
    statementNames.set(text, name);
  }
  return name;
}

/** The query config for `pg`: named when asked to prepare, with Skein's type parsers. */
export function pgQuery(text: string, values: readonly unknown[], options?: QueryOptions): pg.QueryConfig {
  const config: pg.QueryConfig = { text, values: values as unknown[], types: SKEIN_TYPES };
  if (options?.prepare) config.name = statementName(text);
  return config;
}

/** Whether `pg` sends this value as it is (no `toPostgres`, no JSON of an object, nothing that can throw). */
export function plainValue(value: unknown): boolean {
  if (value === null || value === undefined) return true;
  const type = typeof value;
  if (type === "string" || type === "number" || type === "boolean") return true;
  return Array.isArray(value) && value.every(plainValue);
}

