import { readFileSync } from "node:fs";
import path from "node:path";
import type { FastifyInstance } from "fastify";

/** The dashboard's files (plain HTML, CSS and JavaScript; no build step), read once. */
const UI_DIR = path.join(__dirname, "ui");
const FILES: Record<string, { file: string; type: string }> = {
  "/": { file: "index.html", type: "text/html; charset=utf-8" },
  "/ui/app.js": { file: "app.js", type: "text/javascript; charset=utf-8" },
  "/ui/style.css": { file: "style.css", type: "text/css; charset=utf-8" },
};

/** Serves the dashboard. Its data comes from the API with the token the user logs in with. */
export async function uiRoutes(app: FastifyInstance): Promise<void> {
  const cache = new Map<string, string>();
  for (const [route, { file, type }] of Object.entries(FILES)) {
    app.get(route, { config: { access: "public" }, schema: { hide: true } }, async (_request, reply) => {
      if (!cache.has(file)) cache.set(file, readFileSync(path.join(UI_DIR, file), "utf8"));
      reply.header("content-type", type).header("cache-control", "no-cache").header("content-security-policy", "default-src 'self'; style-src 'self'; img-src 'self' data:");
      return cache.get(file);
    });
  }
}
