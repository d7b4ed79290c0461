export { LimitService } from "./service";
export { explainFromFacts, type JobExplanation, type WaitReason } from "./explain";
export { parseRateLimitSpec, resolveRateLimit, type RateLimitOptions, type RateLimit } from "./rates";
