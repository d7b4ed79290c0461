import Ajv, { type ValidateFunction } from "ajv";
import addFormats from "ajv-formats";
import type { FastifyInstance, FastifySchema } from "fastify";
import { checkStorableString } from "../core/checks";
import { ValidationError } from "../core/errors";

/**
 * Input checked in one place, before any handler (and so any query) runs:
 * - bodies against their schemas as JSON, types as they are: `true` is not a
 *   name and `"7"` not a number (no coercion);
 * - query strings and path parameters against theirs, coerced from text
 *   (`?limit=10` is the number 10), since text is all a URL holds;
 * - every string of all three, keys included, as text PostgreSQL stores
 *   exactly (no NUL, no lone surrogate), else a 400 naming the field.
 */
export function strictInput(app: FastifyInstance): void {
  const asJson = ajv(false);
  const fromText = ajv("array");
  app.setValidatorCompiler(({ schema, httpPart }) => {
    const validate: ValidateFunction = (httpPart === "body" ? asJson : fromText).compile(schema);
    return (data: unknown) => (validate(data) ? { value: data } : { error: Object.assign(new Error("invalid"), { validation: validate.errors ?? [] }) });
  });
  app.addHook("preValidation", async (request) => {
    checkStrings(request.params, "params");
    checkStrings(request.query, "querystring");
    checkStrings(request.body, "body");
  });
}

function ajv(coerceTypes: false | "array"): Ajv {
  const instance = new Ajv({ coerceTypes, useDefaults: true, removeAdditional: false, allErrors: false, strict: false });
  addFormats(instance);
  return instance;
}

/** Throws a ValidationError naming the first string (or key) PostgreSQL could not store as given. */
function checkStrings(value: unknown, path: string, depth = 0): void {
  if (typeof value === "string") return checkStorableString(value, path);
  if (typeof value !== "object" || value === null || depth > 200) return;
  if (Array.isArray(value)) {
    value.forEach((item, i) => checkStrings(item, `${path}[${i}]`, depth + 1));
    return;
  }
  for (const [key, item] of Object.entries(value)) {
    checkStorableString(key, `${path} key ${JSON.stringify(key.slice(0, 50))}`);
    checkStrings(item, `${path}.${key}`, depth + 1);
  }
}

/** A route schema, for Fastify (the TypeBox schemas are plain JSON Schema). */
export type RouteSchema = FastifySchema & { tags?: string[]; summary?: string; description?: string; hide?: boolean; security?: unknown[] };

export { ValidationError };
