// The application: a signup that writes a user and enqueues its welcome job in one transaction,
// and a worker (normally its own process) that runs the job with the application's own client.
import { JobManager, Worker } from "skein";
import { applicationClient, databaseUrl, SKEIN_SCHEMA } from "./database.ts";

const database = await databaseUrl();
const prisma = applicationClient(database.url);
const jobs = new JobManager(prisma, { schema: SKEIN_SCHEMA });

/** Creates the user and its welcome job atomically: both or neither. `enqueued` hears of the job inside the transaction. */
async function signUp(email: string, options: { failAfterEnqueue?: boolean; enqueued?: (jobId: string) => void } = {}) {
  return prisma.$transaction(async (tx) => {
    const user = await tx.user.create({ data: { email } });
    const job = await jobs.createJob({ jobType: "agent", name: "welcome email", payload: { agent_name: "sendWelcome", parameters: { userId: user.id } } }, { tx });
    options.enqueued?.(job.id);
    if (options.failAfterEnqueue) throw new Error("payment provider said no");
    return { user, job };
  });
}

function check(condition: boolean, what: string): void {
  if (!condition) throw new Error(`example check failed: ${what}`);
}

const worker = new Worker({
  prisma,
  schema: SKEIN_SCHEMA,
  directUrl: database.url, // LISTEN here (your direct URL if the app's goes through PgBouncer)
  agentRegistry: {
    sendWelcome: async (params) => {
      const { userId } = params as { userId: number };
      const user = await prisma.user.findUniqueOrThrow({ where: { id: userId } }); // committed with the job
      await prisma.user.update({ where: { id: userId }, data: { welcomedAt: new Date() } });
      return { sentTo: user.email };
    },
  },
});

try {
  await worker.start();
  const stamp = Date.now();
  const { user, job } = await signUp(`ada+${stamp}@example.com`);
  console.log(`signed up user ${user.id}; welcome job ${job.id} is ${job.status}`);

  let bobsJob = "";
  const refused = await signUp(`bob+${stamp}@example.com`, { failAfterEnqueue: true, enqueued: (id) => (bobsJob = id) }).catch((error: Error) => error.message);
  const bob = await prisma.user.findUnique({ where: { email: `bob+${stamp}@example.com` } });
  check(bob === null && bobsJob !== "" && (await jobs.getJob(bobsJob)) === null, "a rolled-back signup leaves neither user nor job");
  console.log(`a failed signup (${refused}) left no user and no job (${bobsJob} does not exist)`);

  let done = await jobs.getJob(job.id);
  for (let i = 0; i < 200 && done?.status !== "completed"; i++) {
    await new Promise((resolve) => setTimeout(resolve, 50));
    done = await jobs.getJob(job.id);
  }
  check(done?.status === "completed", `the welcome job completes (${JSON.stringify(done)})`);
  const welcomed = await prisma.user.findUniqueOrThrow({ where: { id: user.id } });
  check(welcomed.welcomedAt !== null, "the executor updated the application's row");
  console.log(`welcome job completed: ${JSON.stringify(done?.result)}; user welcomed at ${welcomed.welcomedAt?.toISOString()}`);

  const appJobs = await prisma.job.count(); // the application's own jobs table is untouched
  const history = await prisma.$queryRaw<Array<{ migration_name: string }>>`SELECT migration_name FROM "_prisma_migrations" ORDER BY 1`;
  check(history.every((m) => m.migration_name.startsWith("2025")), "the application's migration history holds only its own migrations");
  console.log(`application tables: ${appJobs} job-board rows; public._prisma_migrations: ${history.map((m) => m.migration_name).join(", ")}`);
} finally {
  await worker.stop();
  await prisma.$disconnect();
  await database.stop();
}
