// Types of the dashboard's browser code: the API's JSON as the pages read it,
// and the two libraries loaded as classic scripts before the modules. Checked
// by tsconfig.ui.json (`npm run typecheck`); never served.

/** ELK's API (elkjs/lib/elk-api.js, which sets `window.ELK`); the layout runs in its web worker. */
declare const ELK: typeof import("elkjs/lib/elk-api").default;
// uPlot (uplot/dist/uPlot.iife.min.js) is its own UMD global `uPlot` (allowUmdGlobalAccess).

type JobStatus = "pending" | "running" | "completed" | "failed" | "cancelled";

interface Me {
  role: "admin" | "tenant";
  tenant?: string;
}

type DependencySpec = string | { id: string; onFailure?: string };

interface Job {
  id: string;
  jobType: string;
  name: string;
  status: JobStatus;
  tenant: string | null;
  queue: string;
  attempts: number;
  retryCount: number;
  maxRetries: number;
  errorMessage: string | null;
  result: unknown;
  dependencies: DependencySpec[];
  parentId: string | null;
  childIds?: string[];
  delegationKey: string | null;
  detached: boolean;
  scheduleName: string | null;
  scheduledFor: string | null;
  lockedBy: string | null;
  startedAt: string | null;
  completedAt: string | null;
  updatedAt: string;
}

/** A durable step (`ctx.step`) or sleep (`ctx.sleep`) of a job. */
interface JobStep {
  name: string;
  attempt: number;
  result: unknown;
  wakeAt: string | null;
  createdAt: string;
}

interface JobEvent {
  at: string;
  event: string;
  attempt: number | null;
  workerId: string | null;
  detail: unknown;
}

interface Explanation {
  summary: string;
}

interface GraphNode {
  id: string;
  name: string;
  status: string;
}

interface GraphEdge {
  from: string;
  to: string;
  onFailure: string;
}

interface Graph {
  nodes: GraphNode[];
  edges: GraphEdge[];
}

interface ThroughputRow {
  minute: string;
  completed: number;
  failed: number;
  cancelled?: number;
}

interface Overview {
  tenant: string | null;
  counts: Record<string, number>;
  completedLastMinute: number;
  failedLastHour: number;
  perMinute: ThroughputRow[];
}

interface WorkerRow {
  id: string;
  host: string;
  pid: number;
  concurrency: number;
  status: string;
  queues: string[] | null;
  tags: string[];
  tenants: string[] | null;
  requested_state: string | null;
  requested_concurrency: number | null;
  started_at: string;
  last_heartbeat_at: string;
  running: number;
}

/** A queue, from `GET /api/queues`. */
interface QueueInfo {
  name: string;
  paused: boolean;
  pausedAt: string | null;
  ready: number;
  running: number;
  waiting: number;
  oldestReadySeconds: number | null;
}

interface Schedule {
  name: string;
  cron: string | null;
  intervalSeconds: number | null;
  timezone: string;
  nextRunAt: string | null;
  lastRunAt: string | null;
  paused: boolean;
}

interface RateLimit {
  key: string;
  perSecond: number | null;
  burst: number;
  tokens: number;
  pausedUntil: string | null;
}

interface TenantToken {
  id: string;
  tenant: string;
  name: string | null;
  createdAt: string;
  lastUsedAt: string | null;
  revokedAt: string | null;
}

/** `event: job` on a stream. */
interface StreamJob {
  id: string;
  name: string;
  status: JobStatus;
  attempt: number;
  at: string;
}

/** `event: log` on a job's stream. */
interface LogLine {
  at: string;
  level: string;
  message: string;
  fields?: unknown;
}
