/**
 * Skein as a script author uses it: create a small graph of jobs, run a
 * worker until the graph is done, and read the results.
 *
 *   npm run example                                   # embedded PostgreSQL in ./.skein
 *   SKEIN_DATABASE_URL=postgresql://... npm run example
 *
 * In your own project, import from "skein" instead of "../src".
 */
import { createPrismaClient, JobManager, JobType, migrate, startEmbeddedDatabase, Worker, type Job } from "../src";

async function main(): Promise<void> {
  // 1. A database: yours, or the embedded one (started here, or attached to if already running).
  const configured = process.env.SKEIN_DATABASE_URL || process.env.DATABASE_URL;
  const embedded = configured ? undefined : await startEmbeddedDatabase({ dataDir: ".skein" });
  const databaseUrl = configured ?? embedded!.url;
  await migrate(databaseUrl); // idempotent

  const prisma = createPrismaClient(databaseUrl);
  const jobManager = new JobManager(prisma);

  // 2. A graph: two loaders fan in to an analysis.
  const sales = await jobManager.createJob({
    jobType: JobType.AGENT,
    name: "load sales",
    description: "Load the sales CSV",
    payload: { agent_name: "loader", parameters: { file: "sales.csv" } },
  });
  const costs = await jobManager.createJob({
    jobType: JobType.AGENT,
    name: "load costs",
    payload: { agent_name: "loader", parameters: { file: "costs.csv" } },
  });
  const analysis = await jobManager.createJob({
    jobType: JobType.QUERY,
    name: "analyze margin",
    payload: { query: "What is the margin?", inferred_goal_output: "report" },
    dependencies: [sales.id, costs.id],
    maxRetries: 2,
  });
  console.log(`created ${sales.id}, ${costs.id} and ${analysis.id} (waiting on ${analysis.pendingDependencies})`);

  // 3. A worker with an agent and a query engine.
  const worker = new Worker({
    prisma,
    agentRegistry: {
      loader: async (params) => ({ file: (params as { file: string }).file, rows: 3 }),
    },
    queryEngine: async ({ query, inferredGoalOutput }, ctx) => {
      const rows = Object.values(ctx.dependencyResults).reduce((sum: number, r) => sum + ((r as { rows: number }).rows ?? 0), 0);
      return { query, format: inferredGoalOutput, answer: `computed from ${rows} rows` };
    },
    maxConcurrentJobs: 4,
    pollInterval: 5,
  });
  const done = new Promise<Job>((resolve) => {
    worker.on("job:complete", (job) => {
      if (job.id === analysis.id) void jobManager.getJob(job.id).then((j) => resolve(j!));
    });
  });
  await worker.start();

  // 4. Wait for the analysis, print it, shut down.
  const finished = await done;
  console.log(`${finished.name}: ${finished.status} in ${finished.durationSeconds?.toFixed(3)} s ->`, finished.result);
  await worker.stop();
  await prisma.$disconnect();
  await embedded?.stop();
}

main().catch((error: unknown) => {
  console.error(error);
  process.exitCode = 1;
});
