import type { Sql } from "../database";

/** A stored API token (without its secret). */
export interface TokenRow {
  id: string;
  tenant: string;
  name: string | null;
  secret_hash: string;
  created_at: Date;
  revoked_at: Date | null;
  last_used_at: Date | null;
}

/** Stores a token's id, tenant and secret hash. */
export async function insertToken(sql: Sql, token: { id: string; tenant: string; name: string | null; secretHash: string }): Promise<void> {
  await sql.query(`INSERT INTO api_tokens (id, tenant, name, secret_hash) VALUES ($1, $2, $3, $4)`, [token.id, token.tenant, token.name, token.secretHash]);
}

/** A token by id (revoked ones included). */
export async function tokenById(sql: Sql, id: string): Promise<TokenRow | undefined> {
  return (await sql.query<TokenRow>(`SELECT * FROM api_tokens WHERE id = $1`, [id]))[0];
}

/** Every token, newest first. */
export function listTokens(sql: Sql): Promise<TokenRow[]> {
  return sql.query<TokenRow>(`SELECT * FROM api_tokens ORDER BY created_at DESC, id`);
}

/** Revokes a token; returns whether it was active. */
export async function revokeToken(sql: Sql, id: string): Promise<boolean> {
  return (await sql.query(`UPDATE api_tokens SET revoked_at = clock_timestamp() WHERE id = $1 AND revoked_at IS NULL RETURNING id`, [id])).length > 0;
}

/** Records that a token was used (at most once a minute per token). */
export async function touchToken(sql: Sql, id: string): Promise<void> {
  await sql.query(`UPDATE api_tokens SET last_used_at = clock_timestamp() WHERE id = $1 AND (last_used_at IS NULL OR last_used_at < clock_timestamp() - interval '1 minute')`, [id]);
}
