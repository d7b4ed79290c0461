import { JobStore } from "../../src/db/store";
import { databaseFor } from "../../src/db/database";
import { Claimer } from "../../src/worker/claimer";
import type { PrismaClient } from "../../src";
import type { JsonValue } from "../../src/core/types";

/**
 * Drives jobs through the worker's database seam without a worker process:
 * claims every ready job and completes (or fails) those named.
 */
export class TestDriver {
  readonly store: JobStore;
  constructor(prisma: PrismaClient) {
    this.store = new JobStore(databaseFor(prisma));
  }

  /** Claims all ready jobs (plain ones and those needing the flow-control claim); returns their ids. */
  async claimAll(workerId = "test-worker"): Promise<Array<{ id: string; leaseToken: string }>> {
    const claimer = new Claimer(this.store, { queues: null, tags: [] });
    const rows = [];
    // At least three rounds (the first may only find out that flow-controlled jobs wait), and on while rounds come back full.
    for (let round = 0, got = 0; round < 3 || got === 1000; round++) {
      const claimed = (await claimer.claim(workerId, 1000, 60)).rows;
      got = claimed.length;
      rows.push(...claimed);
    }
    return rows.map((r) => ({ id: r.id, leaseToken: r.lease_token as string }));
  }

  /** Claims ready jobs and completes the one with this id (it must be ready). */
  async complete(id: string, result: JsonValue = { ok: id }): Promise<{ ready: number }> {
    const claimed = await this.claimAll();
    const mine = claimed.find((c) => c.id === id);
    const others = claimed.filter((c) => c.id !== id);
    await this.store.release(others, "test: not this one");
    if (!mine) throw new Error(`job ${id} was not ready to claim`);
    const { accepted, ready } = await this.store.complete([{ ...mine, result }]);
    if (!accepted.includes(id)) throw new Error(`completion of ${id} was refused`);
    return { ready };
  }

  /** Claims ready jobs and fails the one with this id finally. */
  async failFinally(id: string, error = "boom"): Promise<void> {
    const claimed = await this.claimAll();
    const mine = claimed.find((c) => c.id === id);
    await this.store.release(claimed.filter((c) => c.id !== id), "test: not this one");
    if (!mine) throw new Error(`job ${id} was not ready to claim`);
    const outcome = await this.store.fail({ ...mine, error, retryDelaySeconds: 0, final: true });
    if (outcome !== "failed") throw new Error(`failing ${id} gave ${outcome}`);
  }
}
