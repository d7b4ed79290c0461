import type { FastifyError, FastifyReply, FastifyRequest } from "fastify";
import { DependencyCycleError, DuplicateJobIdError, InvalidJobStateError, JobNotFoundError, ScheduleNotFoundError, UnknownDependencyError, ValidationError } from "../core/errors";
import type { Logger } from "../core/logger";

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

/** Turns every error into `{ error, message, field? }` with the right status; never a stack trace. */
export function errorHandler(logger: Logger) {
  return (error: FastifyError, request: FastifyRequest, reply: FastifyReply) => {
    if (error.validation && error.validation.length > 0) {
      const first = error.validation[0];
      const missing = (first.params as { missingProperty?: string; additionalProperty?: string } | undefined) ?? {};
      const path = [error.validationContext, first.instancePath.replace(/^\//, "").replace(/\//g, "."), missing.missingProperty ?? missing.additionalProperty]
        .filter((p) => p !== undefined && p !== "")
        .join(".");
      return reply.status(400).send({ error: "bad request", message: `${path}: ${first.message ?? "invalid"}`, field: path });
    }
    if (error instanceof HttpError) return reply.status(error.statusCode).send({ error: statusText(error.statusCode), message: error.message, field: error.field });
    if (error instanceof ValidationError) return reply.status(400).send({ error: "bad request", message: error.message, field: error.field });
    if (error instanceof UnknownDependencyError || error instanceof DependencyCycleError) return reply.status(400).send({ error: "bad request", message: error.message, field: "dependencies" });
    if (error instanceof DuplicateJobIdError) return reply.status(409).send({ error: "conflict", message: error.message, field: "id" });
    if (error instanceof InvalidJobStateError) return reply.status(409).send({ error: "conflict", message: error.message });
    if (error instanceof JobNotFoundError || error instanceof ScheduleNotFoundError) return reply.status(404).send({ error: "not found", message: error.message });
    if (typeof error.statusCode === "number" && error.statusCode >= 400 && error.statusCode < 500) {
      return reply.status(error.statusCode).send({ error: statusText(error.statusCode), message: error.message });
    }
    logger.error("request failed", { method: request.method, url: request.url, error: String(error) });
    return reply.status(500).send({ error: "internal error", message: "the request failed; see the server log" });
  };
}

function statusText(code: number): string {
  return ({ 400: "bad request", 401: "unauthorized", 403: "forbidden", 404: "not found", 409: "conflict", 413: "payload too large" } as Record<number, string>)[code] ?? "error";
}
