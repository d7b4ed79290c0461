import type { DependencySpec, Job } from "../core/types";
import type { Database } from "../db/database";
import { ownedIds } from "../db/sql/server";
import type { GraphNode } from "../db/sql/graph";

/**
 * Job and task ids as a tenant sees them. Ids are unique per tenant in what a
 * tenant can observe: the ids a tenant chooses are stored under its own
 * prefix (`t<length>:<tenant>:<id>`, which no two tenants share), so that
 * creating "report" never clashes with another tenant's "report" and a 409
 * never tells one tenant that another holds an id. The tenant never sees the
 * prefix; ids Skein generated (UUIDs) carry none. The admin sees ids as
 * stored.
 */
export class TenantIds {
  private readonly prefix: string | null;

  constructor(readonly tenant: string | null) {
    this.prefix = tenant === null ? null : `t${tenant.length}:${tenant}:`;
  }

  /** An id the tenant chose for something new (a job or task it creates). */
  inward(id: string): string {
    return this.prefix === null ? id : this.prefix + id;
  }

  /** An id as the tenant sees it. */
  outward(id: string): string {
    return this.prefix !== null && id.startsWith(this.prefix) ? id.slice(this.prefix.length) : id;
  }

  /** Any text (an error or an explanation) with stored ids as the tenant sees them. */
  text(message: string): string {
    return this.prefix === null ? message : message.split(this.prefix).join("");
  }

  /**
   * The stored ids of existing jobs the tenant names: its prefixed id if it
   * has one, else the id as given if that job is the tenant's (a generated
   * id). An id that names neither stays prefixed (it stays unknown).
   */
  async resolve(db: Database, ids: readonly string[]): Promise<Map<string, string>> {
    const out = new Map<string, string>();
    if (this.prefix === null || this.tenant === null) {
      for (const id of ids) out.set(id, id);
      return out;
    }
    const candidates = [...new Set(ids.flatMap((id) => [this.inward(id), id]))];
    const owned = new Set(await ownedIds(db, candidates, this.tenant));
    for (const id of ids) out.set(id, owned.has(this.inward(id)) || !owned.has(id) ? this.inward(id) : id);
    return out;
  }

  /** One existing job's stored id (see {@link TenantIds.resolve}). */
  async resolveOne(db: Database, id: string): Promise<string> {
    return (await this.resolve(db, [id])).get(id) as string;
  }

  /** A job as the tenant sees it. */
  job(job: Job): Job {
    if (this.prefix === null) return job;
    return {
      ...job,
      id: this.outward(job.id),
      dependencies: job.dependencies.map((d): DependencySpec => (typeof d === "string" ? this.outward(d) : { ...d, id: this.outward(d.id) })),
      parentId: job.parentId === null ? null : this.outward(job.parentId),
      taskId: job.taskId === null ? null : this.outward(job.taskId),
      childIds: job.childIds?.map((c) => this.outward(c)),
      errorMessage: job.errorMessage === null ? null : this.text(job.errorMessage),
    };
  }

  /** A drawn graph as the tenant sees it. */
  graph(graph: { nodes: GraphNode[]; edges: Array<{ from: string; to: string; onFailure: string }> }): typeof graph {
    if (this.prefix === null) return graph;
    return {
      nodes: graph.nodes.map((n) => ({ ...n, id: this.outward(n.id) })),
      edges: graph.edges.map((e) => ({ ...e, from: this.outward(e.from), to: this.outward(e.to) })),
    };
  }
}
