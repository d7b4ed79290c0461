#!/usr/bin/env node
// Copies the dashboard's static files (src/server/ui) next to the compiled server (dist/server/ui).
const { cpSync } = require("node:fs");
const path = require("node:path");

const root = path.join(__dirname, "..");
cpSync(path.join(root, "src", "server", "ui"), path.join(root, "dist", "server", "ui"), { recursive: true });
