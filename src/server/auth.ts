import { createHash, randomBytes, timingSafeEqual } from "node:crypto";
import type { Database } from "../db/database";
import { insertToken, listTokens, revokeToken, tokenById, touchToken } from "../db/sql/tokens";
import { ValidationError } from "../core/errors";
import { checkText, LIMITS } from "../jobs/validation";

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

/**
 * Creates a tenant token. The returned `token` is shown once: only the
 * SHA-256 of its secret is stored.
 */
export async function createTenantToken(db: Database, tenant: string, name?: string): Promise<{ token: string } & ApiToken> {
  const t = checkText(tenant, "tenant", LIMITS.keyLength, false);
  const n = name === undefined ? null : checkText(name, "name", 200, false);
  const id = randomBytes(8).toString("hex");
  const secret = randomBytes(32).toString("base64url");
  await insertToken(db, { id, tenant: t, name: n, secretHash: sha256(secret).toString("hex") });
  const row = await tokenById(db, id);
  return { token: `skt_${id}_${secret}`, ...toApiToken(row as NonNullable<typeof row>) };
}

/** Every tenant token (without secrets). */
export async function listTenantTokens(db: Database): Promise<ApiToken[]> {
  return (await listTokens(db)).map(toApiToken);
}

/** Revokes a token; returns whether it was active. */
export async function revokeTenantToken(db: Database, id: string): Promise<boolean> {
  if (!/^[a-f0-9]{16}$/.test(id)) throw new ValidationError("id", "is not a token id");
  return revokeToken(db, id);
}

/**
 * Who a bearer token belongs to, or undefined (unknown, malformed, revoked).
 * Compares hashes in constant time.
 */
export async function authenticate(db: Database, token: string | undefined, adminToken: string | undefined): Promise<Principal | undefined> {
  if (!token) return undefined;
  if (adminToken && timingSafeEqual(sha256(token), sha256(adminToken))) return { kind: "admin" };
  const match = TOKEN.exec(token);
  if (!match) return undefined;
  const row = await tokenById(db, match[1]);
  if (!row || row.revoked_at !== null) return undefined;
  if (!timingSafeEqual(sha256(match[2]), Buffer.from(row.secret_hash, "hex"))) return undefined;
  void touchToken(db, row.id).catch(() => undefined);
  return { kind: "tenant", tenant: row.tenant, tokenId: row.id };
}

function toApiToken(row: { id: string; tenant: string; name: string | null; created_at: Date; revoked_at: Date | null; last_used_at: Date | null }): ApiToken {
  return { id: row.id, tenant: row.tenant, name: row.name, createdAt: row.created_at, revokedAt: row.revoked_at, lastUsedAt: row.last_used_at };
}
