import type { FastifyError, FastifyReply, FastifyRequest } from "fastify";
import { DependencyCycleError, DuplicateJobIdError, InvalidJobStateError, JobNotFoundError, ScheduleNotFoundError, UnknownDependencyError, ValidationError, WorkerNotFoundError } from "../core/errors";
import type { Logger } from "../core/logger";
import { TenantIds } from "./tenancy";

/** An HTTP error with its status. */
export class HttpError extends Error {
  constructor(
    readonly statusCode: number,
    message: string,
    readonly field?: string,
  ) {
    super(message);
  }
}

/** The body of every error response. */
interface ErrorBody {
  error: string;
  message: string;
  field?: string;
}

/** A status and body for an error Skein raises on purpose, or undefined for an unexpected one. */
function known(error: FastifyError): [number, ErrorBody] | undefined {
  if (error.validation && error.validation.length > 0) {
    const first = error.validation[0];
    const params = (first.params as { missingProperty?: string; additionalProperty?: string } | undefined) ?? {};
    const path = [error.validationContext, first.instancePath.replace(/^\//, "").replace(/\//g, "."), params.missingProperty ?? params.additionalProperty]
      .filter((p) => p !== undefined && p !== "")
      .join(".");
    return [400, { error: "bad request", message: `${path}: ${first.message ?? "invalid"}`, field: path }];
  }
  if (error instanceof HttpError) return [error.statusCode, { error: statusText(error.statusCode), message: error.message, field: error.field }];
  if (error instanceof ValidationError) return [400, { error: "bad request", message: error.message, field: error.field }];
  if (error instanceof UnknownDependencyError || error instanceof DependencyCycleError) return [400, { error: "bad request", message: error.message, field: "dependencies" }];
  if (error instanceof DuplicateJobIdError) return [409, { error: "conflict", message: error.message, field: "id" }];
  if (error instanceof InvalidJobStateError) return [409, { error: "conflict", message: error.message }];
  if (error instanceof JobNotFoundError || error instanceof ScheduleNotFoundError || error instanceof WorkerNotFoundError) return [404, { error: "not found", message: error.message }];
  if (typeof error.statusCode === "number" && error.statusCode >= 400 && error.statusCode < 500) return [error.statusCode, { error: statusText(error.statusCode), message: error.message }];
  return undefined;
}

/**
 * Turns every error into `{ error, message, field? }` with the right status;
 * never a stack trace, never another tenant's id, and an unexpected error is
 * logged with its URL's secrets redacted.
 */
export function errorHandler(logger: Logger) {
  return (error: FastifyError, request: FastifyRequest, reply: FastifyReply) => {
    const answer = known(error);
    if (!answer) {
      logger.error("request failed", { method: request.method, url: redactUrl(request.url), error: String(error) });
      return reply.status(500).send({ error: "internal error", message: "the request failed; see the server log" });
    }
    const [status, body] = answer;
    if (status === 413) {
      // The client may still be sending: read (and drop) the rest, so it gets this reply, not a reset.
      reply.header("connection", "close");
      request.raw.resume();
    }
    const ids = request.principal?.kind === "tenant" ? new TenantIds(request.principal.tenant) : undefined;
    return reply.status(status).send(ids ? { ...body, message: ids.text(body.message) } : body);
  };
}

const SECRET_PARAMS = /([?&](?:ticket|access_token|token|apikey|api_key)=)[^&#]*/gi;
const TOKENS = /\b(skt_[a-f0-9]{16}_|sst_)[A-Za-z0-9_-]+/g;

/** A URL as it may be logged: ticket and token parameters, and anything that looks like a Skein token, replaced by `***`. */
export function redactUrl(url: string): string {
  return url.replace(SECRET_PARAMS, "$1***").replace(TOKENS, "$1***");
}

function statusText(code: number): string {
  return ({ 400: "bad request", 401: "unauthorized", 403: "forbidden", 404: "not found", 409: "conflict", 413: "payload too large", 415: "unsupported media type" } as Record<number, string>)[code] ?? "error";
}
