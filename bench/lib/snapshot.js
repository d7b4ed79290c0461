"use strict";
// A private copy of the built package (dist/, prisma/migrations, package.json)
// for the whole run: a rebuild of dist/ while the benchmark runs (another
// terminal, another agent) must not mix two versions of Skein in one run.
// Children find it through SKEIN_BENCH_DIST.
const { execFileSync } = require("node:child_process");
const fs = require("node:fs");
const os = require("node:os");
const path = require("node:path");

const ROOT = path.join(__dirname, "..", "..");

function snapshotPackage() {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "skein-bench-pkg-"));
  fs.cpSync(path.join(ROOT, "dist"), path.join(dir, "dist"), { recursive: true });
  fs.cpSync(path.join(ROOT, "prisma"), path.join(dir, "prisma"), { recursive: true });
  fs.copyFileSync(path.join(ROOT, "package.json"), path.join(dir, "package.json"));
  fs.symlinkSync(path.join(ROOT, "node_modules"), path.join(dir, "node_modules"), "dir");
  process.env.SKEIN_BENCH_DIST = path.join(dir, "dist");
  return dir;
}

/** The dist folder to load Skein from (the snapshot when one was taken). */
function distDir() {
  return process.env.SKEIN_BENCH_DIST || path.join(ROOT, "dist");
}

/** The commit the working tree is at, and whether src/ or prisma/ has uncommitted changes. */
function gitState() {
  try {
    const commit = execFileSync("git", ["rev-parse", "--short", "HEAD"], { cwd: ROOT, encoding: "utf8" }).trim();
    const dirty = execFileSync("git", ["status", "--porcelain", "--", "src", "prisma"], { cwd: ROOT, encoding: "utf8" }).trim() !== "";
    return { commit, dirty };
  } catch {
    return { commit: null, dirty: null };
  }
}

module.exports = { snapshotPackage, distDir, gitState };
