/**
 * Durable workflows, runnable: durable steps, children a job waits for
 * (keyed, so a retry finds them), a sleep, and a retry that resumes instead
 * of starting over.
 *
 *   npm run example:durable                                  # embedded PostgreSQL in ./.skein
 *   SKEIN_DATABASE_URL=postgresql://... npm run example:durable
 *
 * In your own project, import from "skein" instead of "../src".
 */
import { createPrismaClient, JobManager, migrate, startEmbeddedDatabase, Worker, type AgentRegistry, type Job } from "../src";

/** How many times each piece of work really ran. */
const ran: Record<string, number> = {};
const count = (what: string) => (ran[what] = (ran[what] ?? 0) + 1);

const agents: AgentRegistry = {
  research: async (params, ctx) => {
    const { topic } = params as { topic: string };
    // A durable step: its result is stored; a later attempt gets it back without running it.
    const sources = await ctx.step("find sources", async () => {
      count("find sources");
      return [`${topic}-papers`, `${topic}-news`];
    });
    // One child per source, keyed by the source: a retried attempt finds them instead of making new ones.
    // Waiting parks this job (no slot, no lease) until both children end.
    const summaries = await ctx.delegateAll(
      sources.map((source) => ({ key: source, jobType: "agent" as const, name: `summarise ${source}`, payload: { agent_name: "summarise", parameters: source } })),
      { wait: true, timeoutSeconds: 60 },
    );
    if (ctx.job.retryCount === 0) throw new Error("the model timed out (on purpose: the retry resumes from here)");
    await ctx.sleep("cool down", 500); // ends the attempt; the job runs again in 0.5 s, without holding a slot meanwhile
    return ctx.step("write report", async () => {
      count("write report");
      return { topic, summaries };
    });
  },
  summarise: async (params) => {
    count("summarise");
    return `summary of ${String(params)}`;
  },
};

async function main(): Promise<void> {
  const configured = process.env.SKEIN_DATABASE_URL || process.env.DATABASE_URL;
  const embedded = configured ? undefined : await startEmbeddedDatabase({ dataDir: ".skein" });
  const databaseUrl = configured ?? embedded!.url;
  await migrate(databaseUrl);
  const prisma = createPrismaClient(databaseUrl);
  const jobManager = new JobManager(prisma);
  const worker = new Worker({ prisma, agentRegistry: agents, maxConcurrentJobs: 1, pollInterval: 1, retryBackoff: { baseSeconds: 0.2, maxSeconds: 1 } });
  await worker.start();
  try {
    const job = await jobManager.createJob({ jobType: "agent", name: "research", payload: { agent_name: "research", parameters: { topic: "pricing" } }, maxRetries: 2 });
    let done: Job | null = null;
    while (!done?.archived) {
      await new Promise((resolve) => setTimeout(resolve, 100));
      done = await jobManager.getJob(job.id);
    }
    console.log(`research: ${done.status} after ${done.attempts} attempts (${done.retryCount} retry) ->`, JSON.stringify(done.result));
    for (const what of ["find sources", "summarise", "write report"]) console.log(`${what} ran ${ran[what] ?? 0} time(s)`);
    const steps = (await jobManager.getJobSteps(job.id)) ?? [];
    console.log(`stored steps: ${steps.map((s) => `${s.name} (attempt ${s.attempt})`).join(", ")}`);
    const children = await jobManager.getJobHistory({ parentId: job.id });
    console.log(`children: ${children.map((c) => `${c.delegationKey} ${c.status}`).join(", ")}`);
    const events = (await jobManager.getJobEvents(job.id)) ?? [];
    console.log(`timeline: ${events.map((e) => e.event).join(" -> ")}`);
  } finally {
    await worker.stop();
    await prisma.$disconnect();
    await embedded?.stop();
  }
}

main().catch((error: unknown) => {
  console.error(error);
  process.exitCode = 1;
});
