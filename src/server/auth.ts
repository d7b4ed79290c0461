import { createHash, randomBytes, timingSafeEqual } from "node:crypto";
import { clientSettings, type PrismaClient } from "../db/client";
import { ValidationError } from "../core/errors";
import { checkText, LIMITS } from "../core/checks";

/** Who is calling: the admin (everything), or a tenant (only its own jobs). */
export type Principal = { kind: "admin" } | { kind: "tenant"; tenant: string; tokenId: string };

/** A tenant token as listed (never its secret). */
export interface ApiToken {
  id: string;
  tenant: string;
  name: string | null;
  createdAt: Date;
  revokedAt: Date | null;
  lastUsedAt: Date | null;
}

const sha256 = (text: string) => createHash("sha256").update(text).digest();
const TOKEN = /^skt_([a-f0-9]{16})_([A-Za-z0-9_-]{43})$/;
const TICKET = /^sst_[A-Za-z0-9_-]{43}$/;

/** How long a stream ticket may open streams (a stream it opened stays open). */
export const TICKET_SECONDS = 60;

/**
 * Tokens are administration, on Skein's own client (from
 * `createPrismaClient`): they use its typed model API (see
 * docs/ARCHITECTURE.md, "Typed models or SQL").
 * @throws {@link ValidationError} for any other client.
 */
export function skeinClient(prisma: unknown): PrismaClient {
  if (typeof prisma !== "object" || prisma === null || !clientSettings(prisma)) {
    throw new ValidationError("prisma", "must be a client from createPrismaClient (the server and its tokens use Skein's own models)");
  }
  return prisma as PrismaClient;
}

/**
 * Creates a tenant token. The returned `token` is shown once: only the
 * SHA-256 of its secret is stored.
 */
export async function createTenantToken(prisma: PrismaClient, tenant: string, name?: string): Promise<{ token: string } & ApiToken> {
  const t = checkText(tenant, "tenant", LIMITS.keyLength, false);
  const n = name === undefined ? null : checkText(name, "name", 200, false);
  const id = randomBytes(8).toString("hex");
  const secret = randomBytes(32).toString("base64url");
  const row = await skeinClient(prisma).apiToken.create({ data: { id, tenant: t, name: n, secretHash: sha256(secret).toString("hex") } });
  return { token: `skt_${id}_${secret}`, ...toApiToken(row) };
}

/** Every tenant token (without secrets), newest first. */
export async function listTenantTokens(prisma: PrismaClient): Promise<ApiToken[]> {
  return (await skeinClient(prisma).apiToken.findMany({ orderBy: [{ createdAt: "desc" }, { id: "asc" }] })).map(toApiToken);
}

/** Revokes a token; returns whether it was active. */
export async function revokeTenantToken(prisma: PrismaClient, id: string): Promise<boolean> {
  if (!/^[a-f0-9]{16}$/.test(id)) throw new ValidationError("id", "is not a token id");
  const { count } = await skeinClient(prisma).apiToken.updateMany({ where: { id, revokedAt: null }, data: { revokedAt: new Date() } });
  return count > 0;
}

/**
 * Who a bearer token belongs to, or undefined (unknown, malformed, revoked).
 * Compares hashes in constant time.
 */
export async function authenticate(prisma: PrismaClient, token: string | undefined, adminToken: string | undefined): Promise<Principal | undefined> {
  if (!token) return undefined;
  if (adminToken && timingSafeEqual(sha256(token), sha256(adminToken))) return { kind: "admin" };
  const match = TOKEN.exec(token);
  if (!match) return undefined;
  const row = await prisma.apiToken.findUnique({ where: { id: match[1] } });
  if (!row || row.revokedAt !== null) return undefined;
  if (!timingSafeEqual(sha256(match[2]), Buffer.from(row.secretHash, "hex"))) return undefined;
  // Recorded at most once a minute per token.
  const minuteAgo = new Date(Date.now() - 60_000);
  void prisma.apiToken
    .updateMany({ where: { id: row.id, OR: [{ lastUsedAt: null }, { lastUsedAt: { lt: minuteAgo } }] }, data: { lastUsedAt: new Date() } })
    .catch(() => undefined);
  return { kind: "tenant", tenant: row.tenant, tokenId: row.id };
}

function toApiToken(row: { id: string; tenant: string; name: string | null; createdAt: Date; revokedAt: Date | null; lastUsedAt: Date | null }): ApiToken {
  return { id: row.id, tenant: row.tenant, name: row.name, createdAt: row.createdAt, revokedAt: row.revokedAt, lastUsedAt: row.lastUsedAt };
}

/**
 * A short-lived ticket for opening event streams as `principal`: browsers'
 * EventSource cannot send headers, and a ticket in a URL, unlike the token,
 * is worth nothing a minute later. Only its hash is stored.
 */
export async function createStreamTicket(prisma: PrismaClient, principal: Principal, now: Date = new Date()): Promise<{ ticket: string; expiresAt: Date }> {
  const ticket = `sst_${randomBytes(32).toString("base64url")}`;
  const expiresAt = new Date(now.getTime() + TICKET_SECONDS * 1000);
  await prisma.streamTicket.deleteMany({ where: { expiresAt: { lt: now } } });
  await prisma.streamTicket.create({ data: { hash: sha256(ticket).toString("hex"), tenant: principal.kind === "admin" ? null : principal.tenant, expiresAt } });
  return { ticket, expiresAt };
}

/** Who a stream ticket was issued to, while it is valid. */
export async function authenticateTicket(prisma: PrismaClient, ticket: string): Promise<Principal | undefined> {
  if (!TICKET.test(ticket)) return undefined;
  const row = await prisma.streamTicket.findUnique({ where: { hash: sha256(ticket).toString("hex") } });
  if (!row || row.expiresAt.getTime() <= Date.now()) return undefined;
  return row.tenant === null ? { kind: "admin" } : { kind: "tenant", tenant: row.tenant, tokenId: "ticket" };
}
