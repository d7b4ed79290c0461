import { createHash } from "node:crypto";
import { readdirSync, readFileSync } from "node:fs";
import path from "node:path";
import type { FastifyInstance } from "fastify";

/**
 * The dashboard: its own files (ES modules with JSDoc types, CSS and the page;
 * no build step) from ./ui, and the libraries it draws with, resolved from
 * node_modules at run time (runtime dependencies, so this works from src/
 * under ts-jest and from an installed package's dist/ alike). Everything is
 * served by this server: the CSP allows nothing else.
 */
const UI_DIR = path.join(__dirname, "ui");
const JS = "text/javascript; charset=utf-8";
const CSS = "text/css; charset=utf-8";
const CSP = "default-src 'self'; style-src 'self'; img-src 'self' data:; object-src 'none'; base-uri 'none'; frame-ancestors 'none'";

/** uPlot draws the throughput chart; ELK lays out job graphs in its web worker. */
const VENDOR: Record<string, { module: string; type: string }> = {
  "/ui/vendor/uplot.js": { module: "uplot/dist/uPlot.iife.min.js", type: JS },
  "/ui/vendor/uplot.css": { module: "uplot/dist/uPlot.min.css", type: CSS },
  "/ui/vendor/elk-api.js": { module: "elkjs/lib/elk-api.js", type: JS },
  "/ui/vendor/elk-worker.min.js": { module: "elkjs/lib/elk-worker.min.js", type: JS },
};

/** Route to file and content type: the page, every module and style sheet in ./ui, and the libraries. */
function files(): Map<string, { file: string; type: string }> {
  const out = new Map<string, { file: string; type: string }>([["/", { file: path.join(UI_DIR, "index.html"), type: "text/html; charset=utf-8" }]]);
  for (const name of readdirSync(UI_DIR).sort()) {
    if (name.endsWith(".js")) out.set(`/ui/${name}`, { file: path.join(UI_DIR, name), type: JS });
    else if (name.endsWith(".css")) out.set(`/ui/${name}`, { file: path.join(UI_DIR, name), type: CSS });
  }
  for (const [route, { module, type }] of Object.entries(VENDOR)) out.set(route, { file: require.resolve(module), type });
  return out;
}

/** Serves the dashboard. Its data comes from the API with the token the user logs in with. */
export async function uiRoutes(app: FastifyInstance): Promise<void> {
  const cache = new Map<string, { body: Buffer; etag: string }>();
  for (const [route, { file, type }] of files()) {
    app.get(route, { config: { access: "public" }, schema: { hide: true } }, async (request, reply) => {
      let entry = cache.get(file);
      if (!entry) {
        const body = readFileSync(file);
        entry = { body, etag: `"${createHash("sha256").update(body).digest("base64url").slice(0, 27)}"` };
        cache.set(file, entry);
      }
      reply.header("content-type", type).header("cache-control", "no-cache").header("etag", entry.etag).header("content-security-policy", CSP).header("x-content-type-options", "nosniff");
      if (request.headers["if-none-match"] === entry.etag) return reply.status(304).send();
      return entry.body;
    });
  }
}
