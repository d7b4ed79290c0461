import { ValidationError } from "../core/errors";

/** A rate limit as `setRateLimit` takes it: one of `perSecond` or `perMinute`, and an optional burst. */
export interface RateLimitOptions {
  /** Jobs (or cost units) per second. */
  perSecond?: number;
  /** Jobs (or cost units) per minute. */
  perMinute?: number;
  /**
   * How many may start at once after an idle spell (the bucket's size).
   * @defaultValue a tenth of a second's worth, at least 1
   */
  burst?: number;
}

/** A stored rate limit. */
export interface RateLimit {
  key: string;
  /** Sustained rate; null when the key only has a pause recorded. */
  perSecond: number | null;
  burst: number;
  /** Tokens available now. */
  tokens: number;
  /** Set while the key is paused after a provider pushed back. */
  pausedUntil: Date | null;
}

/** Validates options into a rate per second and a burst, naming the bad field. */
export function resolveRateLimit(options: RateLimitOptions): { ratePerSecond: number; burst: number } {
  if (typeof options !== "object" || options === null) throw new ValidationError("rateLimit", "must be an object like { perSecond: 120 }");
  const { perSecond, perMinute, burst } = options;
  if ((perSecond === undefined) === (perMinute === undefined)) throw new ValidationError("rateLimit", "give exactly one of perSecond or perMinute");
  const rate = perSecond ?? (perMinute as number) / 60;
  const field = perSecond !== undefined ? "perSecond" : "perMinute";
  const given = perSecond ?? perMinute;
  if (typeof given !== "number" || !Number.isFinite(given) || given <= 0 || given > 1e9) throw new ValidationError(field, `must be a positive number up to 1e9 (got ${String(given)})`);
  if (burst !== undefined && (typeof burst !== "number" || !Number.isFinite(burst) || burst < 1 || burst > 1e9)) {
    throw new ValidationError("burst", `must be a number from 1 to 1e9 (got ${String(burst)})`);
  }
  return { ratePerSecond: rate, burst: burst ?? Math.max(1, rate / 10) };
}

/**
 * Parses the CLI's `key=120/s`, `key=600/m` (or `/min`), with an optional
 * burst: `key=120/s:20`. Throws a ValidationError naming the flag.
 */
export function parseRateLimitSpec(spec: string): { key: string; options: RateLimitOptions } {
  const match = /^([^=\s]+)=(\d+(?:\.\d+)?)\/(s|sec|second|m|min|minute)(?::(\d+(?:\.\d+)?))?$/.exec(spec.trim());
  if (!match) throw new ValidationError("--rate-limit", `expected key=N/s or key=N/m, optionally :burst (e.g. openai=120/s:20), got ${JSON.stringify(spec)}`);
  const [, key, amount, unit, burst] = match;
  const value = Number(amount);
  const options: RateLimitOptions = unit.startsWith("s") ? { perSecond: value } : { perMinute: value };
  if (burst !== undefined) options.burst = Number(burst);
  resolveRateLimit(options);
  return { key, options };
}
