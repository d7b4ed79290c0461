import { newJobId } from "../src/core/ids";

const V7 = /^[0-9a-f]{8}-[0-9a-f]{4}-7[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/;
/** The Unix milliseconds in a version 7 UUID's first 48 bits. */
const msOf = (id: string) => parseInt(id.replace(/-/g, "").slice(0, 12), 16);

describe("newJobId", () => {
  it("makes version 7 UUIDs carrying the time they were made", () => {
    const before = Date.now();
    const id = newJobId();
    expect(id).toMatch(V7);
    expect(msOf(id)).toBeGreaterThanOrEqual(before);
    expect(msOf(id)).toBeLessThanOrEqual(Date.now() + 1);
    expect(msOf(newJobId(Date.UTC(2030, 0, 1)))).toBe(Date.UTC(2030, 0, 1));
  });

  it("sorts ids in the order they were made, as text, within one millisecond and past 4,096 of them", () => {
    const ids = Array.from({ length: 20_000 }, () => newJobId(Date.UTC(2031, 0, 1)));
    expect(ids.every((id) => V7.test(id))).toBe(true);
    expect(new Set(ids).size).toBe(ids.length);
    expect(ids.every((id, i) => i === 0 || ids[i - 1] < id)).toBe(true);
    // The sequence overflowed: the time field moved on rather than wrapping.
    expect(msOf(ids[ids.length - 1])).toBeGreaterThan(Date.UTC(2031, 0, 1));
    // A clock that steps back does not break the order either.
    const after = newJobId(Date.UTC(2031, 0, 1) - 60_000);
    expect(after > ids[ids.length - 1]).toBe(true);
  });
});
