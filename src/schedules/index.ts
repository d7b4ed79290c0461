export { ScheduleService, type FiredTick, type ScheduledJobs } from "./service";
export { MISFIRE_GRACE_SECONDS, planTicks, resolveSchedule, toSchedule, type CatchUpPolicy, type CreateScheduleInput, type Schedule } from "./plan";
export { nextCronTime } from "./next";
