import { mkdirSync, writeFileSync } from "node:fs";
import path from "node:path";
import { ROOT } from "./server";

/** What one scenario reports for docs/RELIABILITY.md (rendered by setup/global-teardown.js). */
export interface ScenarioReport {
  scenario: string;
  budget: string;
  seed?: number;
  startedAt: string;
  durationSeconds: number;
  /** Jobs created and checked. */
  jobs: number;
  /** Faults by kind: kill -9, SIGSTOP, database restarts, terminated connections, ... */
  faults: Record<string, number>;
  /** Worker processes started (the initial ones and every replacement). */
  workerProcesses?: number;
  /** Restarts of PostgreSQL. */
  restarts?: number;
  /** Generated inputs tried (property tests). */
  inputs?: number;
  /** Other figures worth printing (attempts, refused writes, rescued leases, ...). */
  figures: Record<string, number | string>;
  violations: string[];
}

export function resultsDir(): string {
  return process.env.CHAOS_RESULTS_DIR ?? path.join(ROOT, "tests", "chaos", ".results");
}

/** Records a scenario's figures (one file per scenario; the last write wins). */
export function writeReport(report: ScenarioReport): void {
  mkdirSync(resultsDir(), { recursive: true });
  writeFileSync(path.join(resultsDir(), `${report.scenario}.json`), JSON.stringify(report, null, 2));
}

/** Violations as a readable block for a failing expect. */
export function describeViolations(violations: string[], max = 25): string {
  if (violations.length === 0) return "no violations";
  const shown = violations.slice(0, max).map((v) => `  - ${v}`);
  return `${violations.length} invariant violation(s):\n${shown.join("\n")}${violations.length > max ? `\n  ... and ${violations.length - max} more` : ""}`;
}
