import { execFileSync, spawnSync } from "node:child_process";
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from "node:fs";
import os from "node:os";
import path from "node:path";

/**
 * The package as users get it: `npm pack`, installed into a fresh
 * application folder (private, as `mktemp -d` makes it, and as root on CI),
 * then used there with no database URL: require and import, the commands,
 * the demo on the embedded server, and the types in a TypeScript project.
 */

const root = path.resolve(__dirname, "..");
const npm = (args: string[], cwd: string) => execFileSync("npm", args, { cwd, encoding: "utf8", stdio: ["ignore", "pipe", "pipe"], env: { ...process.env, npm_config_audit: "false", npm_config_fund: "false" } });

/** Runs a command in the application folder; returns its exit code and output. */
function inApp(dir: string, command: string, args: string[], timeout = 120_000): { code: number | null; out: string } {
  const env = { ...process.env, SKEIN_DATABASE_URL: "", DATABASE_URL: "", SKEIN_SCHEMA: "" };
  const result = spawnSync(command, args, { cwd: dir, encoding: "utf8", timeout, env });
  return { code: result.status, out: `${result.stdout ?? ""}${result.stderr ?? ""}` };
}

describe("the npm package", () => {
  let work: string;
  let app: string;
  let tarball: string;
  beforeAll(() => {
    work = mkdtempSync(path.join(os.tmpdir(), "skein-pack-"));
    expect(statSync(work).mode & 0o777).toBe(0o700);
    const packed = JSON.parse(npm(["pack", "--json", "--pack-destination", work], root)) as Array<{ filename: string; files: Array<{ path: string }> }>;
    tarball = path.join(work, packed[0].filename);
    app = path.join(work, "my app"); // a path with a space, too
    execFileSync("mkdir", ["-p", app]);
    writeFileSync(path.join(app, "package.json"), JSON.stringify({ name: "my-app", version: "1.0.0", private: true }, null, 2));
    npm(["install", "--no-package-lock", "--prefer-offline", tarball], app);
  }, 300_000);
  afterAll(() => {
    if (work) rmSync(work, { recursive: true, force: true });
  });

  it("contains the build, the migrations and no sources or tests", () => {
    const installed = path.join(app, "node_modules", "skein");
    for (const file of ["dist/index.js", "dist/index.mjs", "dist/index.d.ts", "dist/cli/run-worker.js", "dist/server/ui/index.html", "prisma/migrations/migration_lock.toml", "README.md"]) {
      expect(existsSync(path.join(installed, file))).toBe(true);
    }
    expect(existsSync(path.join(installed, "src"))).toBe(false);
    expect(existsSync(path.join(installed, "tests"))).toBe(false);
    expect(readdirSync(path.join(installed, "prisma", "migrations")).filter((n) => /^\d{14}_/.test(n)).length).toBeGreaterThan(0);
  });

  it("installs only what runs: not the Prisma CLI", () => {
    const manifest = JSON.parse(readFileSync(path.join(app, "node_modules", "skein", "package.json"), "utf8")) as { dependencies: Record<string, string> };
    expect(Object.keys(manifest.dependencies)).not.toContain("prisma");
    expect(existsSync(path.join(app, "node_modules", "prisma"))).toBe(false);
    expect(existsSync(path.join(app, "node_modules", "@prisma", "client"))).toBe(true);
  });

  it("loads with require and with import", () => {
    const cjs = inApp(app, process.execPath, ["-e", 'const s = require("skein"); console.log(typeof s.JobManager, typeof s.createPrismaClient, typeof s.migrate, s.DEFAULT_SCHEMA)']);
    expect(cjs).toEqual({ code: 0, out: "function function function skein\n" });
    const esm = inApp(app, process.execPath, ["--input-type=module", "-e", 'import skein, { JobManager, Worker, migrate } from "skein"; console.log(typeof JobManager, typeof Worker, typeof migrate, skein.JobManager === JobManager)']);
    expect(esm).toEqual({ code: 0, out: "function function function true\n" });
  });

  it("runs its commands with npx, and the demo on the embedded server with no database URL", () => {
    const help = inApp(app, "npx", ["--no-install", "run-worker", "--help"]);
    expect(help.code).toBe(0);
    expect(help.out).toMatch(/--max-concurrent-jobs/);
    expect(help.out).toMatch(/--schema/);
    const demo = inApp(app, "npx", ["--no-install", "skein", "demo"], 180_000);
    if (demo.code !== 0) throw new Error(`skein demo failed:\n${demo.out}`);
    expect(demo.out).toMatch(/completed/);
    expect(existsSync(path.join(app, ".skein"))).toBe(true);
  }, 200_000);

  it("gives types to a TypeScript project (CommonJS and ES module files)", () => {
    writeFileSync(
      path.join(app, "use.ts"),
      `import { createPrismaClient, JobManager, Worker, type Job, type WorkerOptions } from "skein";
const prisma = createPrismaClient("postgresql://localhost/app", { schema: "skein" });
const jobs = new JobManager(prisma, { schema: "skein" });
export const created: Promise<Job> = jobs.createJob({ jobType: "agent", name: "x", payload: { agent_name: "a" } });
export const counted: Promise<number> = prisma.job.count();
const options: WorkerOptions = { prisma, maxConcurrentJobs: 2 };
export const worker = new Worker(options);
`,
    );
    writeFileSync(path.join(app, "use.mts"), `import { JobManager, type JobStatus } from "skein";\nexport const status: JobStatus = "pending";\nexport type M = JobManager;\n`);
    writeFileSync(path.join(app, "tsconfig.json"), JSON.stringify({ compilerOptions: { strict: true, module: "nodenext", moduleResolution: "nodenext", target: "es2022", noEmit: true, types: [] }, files: ["use.ts", "use.mts"] }));
    const tsc = inApp(app, process.execPath, [path.join(root, "node_modules", "typescript", "bin", "tsc"), "-p", "tsconfig.json"]);
    if (tsc.code !== 0) throw new Error(`tsc failed:\n${tsc.out}`);
  });
});
