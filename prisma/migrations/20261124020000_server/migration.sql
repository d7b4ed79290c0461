-- Server: API tokens for tenants. Only a hash of each token's secret is
-- stored; the admin token comes from the server's configuration.
-- Append-only: never edit once applied; add a new migration.
CREATE TABLE "api_tokens" (
    "id" TEXT NOT NULL,
    "tenant" TEXT NOT NULL,
    "name" TEXT,
    "secret_hash" TEXT NOT NULL,
    "created_at" TIMESTAMPTZ(6) NOT NULL DEFAULT CURRENT_TIMESTAMP,
    "revoked_at" TIMESTAMPTZ(6),
    "last_used_at" TIMESTAMPTZ(6),

    CONSTRAINT "api_tokens_pkey" PRIMARY KEY ("id")
);
CREATE INDEX "api_tokens_tenant_idx" ON "api_tokens" ("tenant");
