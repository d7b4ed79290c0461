import path from "node:path";
import { pathToFileURL } from "node:url";
import type { AgentFunction, AgentRegistry, QueryEngine } from "../worker/types";
import { UsageError } from "./config";

async function load(spec: string): Promise<Record<string, unknown>> {
  const target = spec.startsWith(".") || path.isAbsolute(spec) ? pathToFileURL(path.resolve(spec)).href : spec;
  try {
    return (await import(target)) as Record<string, unknown>;
  } catch (error) {
    throw new UsageError(`cannot load module ${JSON.stringify(spec)}: ${(error as Error).message.split("\n")[0]}`);
  }
}

/** The callable a module offers under `name`, as its default export, or as the module itself. */
function pick(mod: Record<string, unknown>, name: string | undefined): unknown {
  const inner = (mod.default ?? {}) as Record<string, unknown>;
  if (name !== undefined) {
    if (typeof mod[name] === "function") return mod[name];
    if (typeof inner[name] === "function") return inner[name];
  }
  if (typeof mod.default === "function") return mod.default;
  return undefined;
}

/**
 * Builds the agent registry from `--agents <module>` (every exported function
 * is an agent, by its export name) and SKEIN_AGENT_CONFIG (agent name →
 * module whose default export, or export of that name, is the agent).
 */
export async function loadAgents(agentsModule: string | undefined, agentConfig: Record<string, string>): Promise<AgentRegistry> {
  const registry: AgentRegistry = {};
  if (agentsModule) {
    const mod = await load(agentsModule);
    const exports = { ...mod, ...(typeof mod.default === "object" && mod.default !== null ? (mod.default as Record<string, unknown>) : {}) };
    for (const [name, value] of Object.entries(exports)) {
      if (typeof value === "function" && name !== "default") registry[name] = value as AgentFunction;
    }
    if (Object.keys(registry).length === 0) throw new UsageError(`--agents ${agentsModule}: the module exports no functions`);
  }
  for (const [name, spec] of Object.entries(agentConfig)) {
    const fn = pick(await load(spec), name);
    if (typeof fn !== "function") throw new UsageError(`SKEIN_AGENT_CONFIG: module ${JSON.stringify(spec)} has no function for agent ${JSON.stringify(name)}`);
    registry[name] = fn as AgentFunction;
  }
  return registry;
}

/** Loads `--query-engine <module>`: its default export, a `queryEngine` export, or the module itself. */
export async function loadQueryEngine(spec: string | undefined): Promise<QueryEngine | undefined> {
  if (!spec) return undefined;
  const fn = pick(await load(spec), "queryEngine");
  if (typeof fn !== "function") throw new UsageError(`--query-engine ${spec}: the module exports no function (default or queryEngine)`);
  return fn as QueryEngine;
}
