import { TABLES, type ChannelName, type SkeinSchema, type TableName } from "../schema";
import type { Sql } from "../database";

/**
 * SQL written as SQL, with three kinds of placeholder: Skein's tables
 * (`${T.jobs}`, qualified with the schema at compile time), its notification
 * channels (`${CHANNEL.ready}`, a string literal of the schema's channel) and
 * named parameters (`${p.workerId}`, numbered `$1, $2, ...` in order of first
 * use, the same name always the same number). Fragments compose: a condition
 * or `SET` clause that several statements need is one function of the
 * parameters it uses, written once.
 */

/** A named parameter of a statement. */
export interface Param<N extends string = string> {
  readonly kind: "param";
  readonly name: N;
}
interface TableRef {
  readonly kind: "table";
  readonly name: TableName;
}
interface ChannelRef {
  readonly kind: "channel";
  readonly name: ChannelName;
}
type Part = string | Param | TableRef | ChannelRef | Fragment;

/** A piece of SQL; see {@link sql}. */
export class Fragment {
  constructor(readonly parts: readonly Part[]) {}
}

/** What may be interpolated into {@link sql}: never a plain string, so no value is ever pasted into the text. */
export type Interpolation = Fragment | Param | TableRef | ChannelRef;

/** Builds a {@link Fragment} from a template. */
export function sql(strings: TemplateStringsArray, ...values: Interpolation[]): Fragment {
  const parts: Part[] = [];
  strings.forEach((text, i) => {
    if (text !== "") parts.push(text);
    if (i < values.length) parts.push(values[i]);
  });
  return new Fragment(parts);
}

const IDENTIFIER = /^[a-z_][a-z0-9_]*(\.[a-z_][a-z0-9_]*)?$/;

/** A trusted identifier (a column, an alias, a CTE's name), optionally qualified: `ident("j.id")`. */
export function ident(name: string): Fragment {
  if (!IDENTIFIER.test(name)) throw new Error(`not an identifier: ${JSON.stringify(name)}`);
  return new Fragment([name]);
}

/** Columns of a table alias as a list: `columnList("j", ["id", "name"])` is `j.id, j.name`. */
export function columnList(alias: string, names: readonly string[]): Fragment {
  return new Fragment(names.flatMap((name, i) => (i === 0 ? [ident(`${alias}.${name}`)] : [", ", ident(`${alias}.${name}`)])));
}

/** The empty fragment. */
export const empty = new Fragment([]);

/** `fragment` when `condition` holds, else nothing. */
export function when(condition: boolean, fragment: Fragment): Fragment {
  return condition ? fragment : empty;
}

/** The fragments joined by `separator` (literal SQL). */
export function join(fragments: readonly Fragment[], separator: string): Fragment {
  return new Fragment(fragments.flatMap((f, i) => (i === 0 ? [f] : [separator, f])));
}

/** Skein's tables, for `${T.jobs}`. */
export const T = Object.fromEntries(TABLES.map((name) => [name, { kind: "table", name }])) as { readonly [K in TableName]: TableRef };

/** Skein's notification channels, for `pg_notify(${CHANNEL.ready}, '')`. */
export const CHANNEL: { readonly ready: ChannelRef; readonly cancelled: ChannelRef; readonly control: ChannelRef } = {
  ready: { kind: "channel", name: "jobs_ready" },
  cancelled: { kind: "channel", name: "jobs_cancelled" },
  control: { kind: "channel", name: "workers_control" },
};

/** The named parameters of a statement whose values have type `P`. */
export type Params<P> = { readonly [K in keyof P & string]-?: Param<K> };

/** A typed view of any object's keys as parameters (for fragments shared by statements). */
export function params<P>(): Params<P> {
  const made = new Map<string, Param>();
  return new Proxy({} as Params<P>, {
    get(_target, name) {
      if (typeof name !== "string") return undefined;
      let param = made.get(name);
      if (!param) {
        param = { kind: "param", name };
        made.set(name, param);
      }
      return param;
    },
  });
}

/** A fragment turned into text for one schema, with its parameters' names in `$n` order. */
export interface Compiled {
  readonly text: string;
  readonly names: readonly string[];
}

/** Compiles a fragment for a schema. */
export function compile(fragment: Fragment, schema: SkeinSchema): Compiled {
  const names: string[] = [];
  const numbers = new Map<string, number>();
  let text = "";
  const walk = (f: Fragment): void => {
    for (const part of f.parts) {
      if (typeof part === "string") text += part;
      else if (part instanceof Fragment) walk(part);
      else if (part.kind === "table") text += schema.table(part.name);
      else if (part.kind === "channel") text += `'${schema.channel(part.name)}'`;
      else {
        let n = numbers.get(part.name);
        if (n === undefined) {
          n = names.push(part.name);
          numbers.set(part.name, n);
        }
        text += `$${n}`;
      }
    }
  };
  walk(fragment);
  return { text, names };
}

/** Options of a {@link Statement}. */
export interface StatementOptions {
  /**
   * Run as a named prepared statement (parsed and planned once per
   * connection) where the connection allows it: for statements that run
   * thousands of times (claim, complete, insert).
   */
  prepare?: boolean;
}

/** Options of one run of a statement. */
export interface RunOptions {
  /** The last statement of its transaction (see `QueryOptions.final`). */
  final?: boolean;
}

/**
 * A statement with named parameters `P`, returning rows `R`. Its text is
 * compiled once per schema.
 */
export class Statement<P extends object, R> {
  private fragment: Fragment | undefined;
  private readonly bySchema = new Map<string, Compiled>();

  constructor(
    private readonly build: (p: Params<P>) => Fragment,
    private readonly options: StatementOptions = {},
  ) {}

  /** The statement's text and parameter order for a schema. */
  compiled(schema: SkeinSchema): Compiled {
    let compiled = this.bySchema.get(schema.name);
    if (!compiled) {
      this.fragment ??= this.build(params<P>());
      compiled = compile(this.fragment, schema);
      this.bySchema.set(schema.name, compiled);
    }
    return compiled;
  }

  /** Runs the statement and returns its rows. */
  all(db: Sql, values: P, options: RunOptions = {}): Promise<R[]> {
    const { text, names } = this.compiled(db.schema);
    const record = values as Record<string, unknown>;
    const ordered = names.map((name) => {
      const value = record[name];
      if (value === undefined) throw new Error(`statement parameter "${name}" has no value`);
      return value;
    });
    return db.query<R>(text, ordered, { prepare: this.options.prepare === true, final: options.final });
  }

  /** Runs the statement and returns its first row, if any. */
  async one(db: Sql, values: P, options: RunOptions = {}): Promise<R | undefined> {
    return (await this.all(db, values, options))[0];
  }
}

/** Defines a statement: `statement<{ id: string }, Row>((p) => sql\`SELECT ... WHERE id = ${p.id}\`)`. */
export function statement<P extends object, R = Record<string, unknown>>(build: (p: Params<P>) => Fragment, options: StatementOptions = {}): Statement<P, R> {
  return new Statement(build, options);
}

/**
 * One statement per variant (a worker filter's shape, say), made on first
 * use: `key` names the variant, `make` defines its statement.
 */
export function variants<V, S>(key: (variant: V) => string, make: (variant: V) => S): (variant: V) => S {
  const made = new Map<string, S>();
  return (variant) => {
    const k = key(variant);
    let s = made.get(k);
    if (s === undefined) {
      s = make(variant);
      made.set(k, s);
    }
    return s;
  };
}
