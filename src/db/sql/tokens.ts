import type { Sql } from "../database";
import { sql, statement, T } from "./template";

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

const insertStatement = statement<{ id: string; tenant: string; name: string | null; secretHash: string }, never>(
  (p) => sql`INSERT INTO ${T.api_tokens} (id, tenant, name, secret_hash) VALUES (${p.id}, ${p.tenant}, ${p.name}, ${p.secretHash})`,
);

/** Stores a token's id, tenant and secret hash. */
export async function insertToken(db: Sql, token: { id: string; tenant: string; name: string | null; secretHash: string }): Promise<void> {
  await insertStatement.all(db, token);
}

const byIdStatement = statement<{ id: string }, TokenRow>((p) => sql`SELECT * FROM ${T.api_tokens} WHERE id = ${p.id}`);

/** A token by id (revoked ones included). */
export function tokenById(db: Sql, id: string): Promise<TokenRow | undefined> {
  return byIdStatement.one(db, { id });
}

const listStatement = statement<Record<string, never>, TokenRow>(() => sql`SELECT * FROM ${T.api_tokens} ORDER BY created_at DESC, id`);

/** Every token, newest first. */
export function listTokens(db: Sql): Promise<TokenRow[]> {
  return listStatement.all(db, {});
}

const revokeStatement = statement<{ id: string }, { id: string }>(
  (p) => sql`UPDATE ${T.api_tokens} SET revoked_at = clock_timestamp() WHERE id = ${p.id} AND revoked_at IS NULL RETURNING id`,
);

/** Revokes a token; returns whether it was active. */
export async function revokeToken(db: Sql, id: string): Promise<boolean> {
  return (await revokeStatement.all(db, { id })).length > 0;
}

const touchStatement = statement<{ id: string }, never>(
  (p) => sql`UPDATE ${T.api_tokens} SET last_used_at = clock_timestamp()
     WHERE id = ${p.id} AND (last_used_at IS NULL OR last_used_at < clock_timestamp() - interval '1 minute')`,
);

/** Records that a token was used (at most once a minute per token). */
export async function touchToken(db: Sql, id: string): Promise<void> {
  await touchStatement.all(db, { id });
}
