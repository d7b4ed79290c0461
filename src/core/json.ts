import { checkStorableString, LIMITS } from "./checks";
import { ValidationError } from "./errors";
import type { JsonValue } from "./types";

/**
 * How {@link storableJson} reads a value: `strict` for what callers give
 * (payloads: plain objects, arrays and primitives only; an undefined property
 * is refused), `lenient` for what executors return (JSON.stringify's own rules
 * first: `toJSON`, undefined properties left out).
 */
export type JsonMode = "strict" | "lenient";

/**
 * A copy of `value` as JSON that PostgreSQL's jsonb stores and returns
 * unchanged, or a {@link ValidationError} naming where it is not: numbers
 * that JSON would turn into null (NaN, infinities), strings and keys with the
 * NUL character or a lone surrogate, cycles, nesting deeper than
 * `LIMITS.jsonDepth`, and what JSON cannot hold at all. The copy shares no
 * object with the input. The one JSON check: payloads, results and templates
 * all go through it.
 */
export function storableJson(value: unknown, path: string, mode: JsonMode): JsonValue {
  // Strict: the walk names the exact place first (a BigInt deep inside, say); lenient: JSON's own rules first.
  if (mode === "strict") walk(value, path, 0, new Set(), mode);
  let text: string | undefined;
  try {
    text = JSON.stringify(value);
  } catch (error) {
    throw new ValidationError(path, `is not JSON-serialisable: ${(error as Error).message}`);
  }
  if (text === undefined) throw new ValidationError(path, `is a ${typeof value}, which JSON cannot hold`);
  if (mode === "lenient") walk(value, path, 0, new Set(), mode);
  return JSON.parse(text) as JsonValue;
}

function walk(value: unknown, path: string, depth: number, seen: Set<object>, mode: JsonMode): void {
  if (depth > LIMITS.jsonDepth) throw new ValidationError(path, `nests deeper than ${LIMITS.jsonDepth} levels`);
  switch (typeof value) {
    case "string":
      return checkStorableString(value, path);
    case "boolean":
      return;
    case "number":
      if (!Number.isFinite(value)) throw new ValidationError(path, `${value} is not representable in JSON`);
      return;
    case "object":
      if (value !== null) walkObject(value, path, depth, seen, mode);
      return;
    default:
      throw new ValidationError(path, `is a ${typeof value}, which JSON cannot hold`);
  }
}

function walkObject(value: object, path: string, depth: number, seen: Set<object>, mode: JsonMode): void {
  if (mode === "lenient" && typeof (value as { toJSON?: unknown }).toJSON === "function") return; // Dates and the like write themselves
  if (seen.has(value)) throw new ValidationError(path, "contains a circular reference");
  seen.add(value);
  if (Array.isArray(value)) {
    value.forEach((item, i) => walk(item, `${path}[${i}]`, depth + 1, seen, mode));
  } else {
    if (mode === "strict" && !isPlainObject(value)) throw new ValidationError(path, `is a ${value.constructor?.name ?? "non-plain"} object, not plain JSON`);
    for (const [key, item] of Object.entries(value)) {
      checkStorableString(key, `${path} key ${JSON.stringify(key)}`);
      if (item === undefined || typeof item === "function" || typeof item === "symbol") {
        if (mode === "strict") throw new ValidationError(`${path}.${key}`, `is ${item === undefined ? "undefined" : `a ${typeof item}`}, which JSON cannot hold`);
        continue; // JSON.stringify leaves the property out
      }
      walk(item, `${path}.${key}`, depth + 1, seen, mode);
    }
  }
  seen.delete(value);
}

/** An object literal (or one made with a null prototype). */
export function isPlainObject(value: object): boolean {
  const proto = Object.getPrototypeOf(value) as unknown;
  return proto === Object.prototype || proto === null;
}
