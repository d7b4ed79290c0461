import type { JobRow } from "../src/db/sql/rows";
import { HeldJobs } from "../src/worker/held";

// Only the fields HeldJobs reads; the worker tests run held jobs end to end.
const row = (id: string): JobRow => ({ id, lease_token: `lease-${id}` }) as JobRow;

function heldJobs(marginMs = 1000) {
  const dropped: string[] = [];
  const held = new HeldJobs({ marginMs, onDropped: (r) => dropped.push(r.id) });
  return { held, dropped };
}

describe("HeldJobs (jobs claimed ahead of free slots)", () => {
  it("hands jobs out in claim order and notes how long each waited", () => {
    const { held } = heldJobs();
    const [a, b, c] = [row("a"), row("b"), row("c")];
    held.add([a, b], 100, 60_000);
    held.add([c], 150, 60_000);
    expect(held.take(2, 400)).toEqual([a, b]);
    expect(held.waitedMs(a)).toBe(300);
    expect(held.size).toBe(1);
    expect(held.take(5, 450)).toEqual([c]);
    expect(held.waitedMs(c)).toBe(300);
    expect(held.take(1, 500)).toEqual([]);
  });

  it("drops, instead of starting, a job with no more than the margin of lease left, and takes the next one", () => {
    const { held, dropped } = heldJobs(1000);
    held.add([row("old")], 0, 5_000);
    held.add([row("new")], 3_000, 9_000);
    expect(held.take(1, 4_000).map((r) => r.id)).toEqual(["new"]);
    expect(dropped).toEqual(["old"]);
    expect(held.size).toBe(0);
  });

  it("applies a renewal to the jobs it asked about: renewed leases move on, lost ones are dropped, later claims are left alone", () => {
    const { held, dropped } = heldJobs(1000);
    held.add([row("kept"), row("lost")], 0, 5_000);
    const renewal = held.leases();
    expect(renewal.tokens).toEqual(["lease-kept", "lease-lost"]);
    held.add([row("later")], 100, 5_000); // a claim that landed while the renewal was in flight
    renewal.renewed(new Set(["lease-kept"]), 4_500, 30_000);
    // Without the renewal, "kept" would have been dropped at 4,500 (less than the margin left).
    expect(held.take(5, 4_500).map((r) => r.id)).toEqual(["kept"]);
    expect(dropped).toEqual(["later"]);
  });

  it("removes cancelled jobs, and hands every job back on stop", () => {
    const { held } = heldJobs();
    held.add([row("a"), row("b"), row("c")], 0, 60_000);
    held.removeIds(new Set(["b"]));
    expect(held.removeAll().map((r) => r.id)).toEqual(["a", "c"]);
    expect(held.size).toBe(0);
  });
});
