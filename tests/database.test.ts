import pg from "pg";
import { createPrismaClient, poolOf } from "../src/db/client";
import { databaseFor, sqlState } from "../src/db/database";
import { parseTimestamptz } from "../src/db/parsers";
import { useTestDatabase } from "./helpers/db";

const ctx = useTestDatabase();

// Timestamps in PostgreSQL's own input form: whole seconds, fractions of
// every length, day and year edges, and forms the fast parser hands to pg's
// (years before 1000 or after 9999, BC).
const INPUTS = [
  "2026-11-24 22:28:23+00",
  "2026-11-24 22:28:23.5+00",
  "2026-11-24 22:28:23.57+00",
  "2026-11-24 22:28:23.123+00",
  "2026-11-24 22:28:23.123456+00",
  "2026-11-24 22:28:23.999999+00",
  "2026-11-24 22:28:23.000001+00",
  "1999-12-31 23:59:59.999+00",
  "2000-02-29 12:00:00+00",
  "1970-01-01 00:00:00+00",
  "1900-01-01 00:00:00+00",
  "0099-06-01 12:00:00+00",
  "12000-01-01 00:00:00+00",
  "0044-03-15 12:00:00+00 BC",
];

describe("Skein's statements on the pg pool", () => {
  it.each(["UTC", "Asia/Kolkata", "America/St_Johns", "Europe/Amsterdam", "Pacific/Chatham"])(
    "read timestamptz columns as the same instant PostgreSQL holds, in session time zone %s",
    async (zone) => {
      const db = databaseFor(ctx.prisma);
      const rows = await db.transaction(async (sql) => {
        await sql.query(`SET LOCAL TIME ZONE '${zone}'`);
        return sql.query<{ t: Date; text: string; ms: number }>(
          `SELECT t, t::text AS text, floor(extract(epoch FROM t) * 1000)::float8 AS ms
           FROM unnest($1::timestamptz[]) AS t`,
          [INPUTS],
          { prepare: true },
        );
      });
      expect(rows).toHaveLength(INPUTS.length);
      for (const row of rows) {
        expect(row.t).toBeInstanceOf(Date);
        expect({ text: row.text, ms: row.t.getTime() }).toEqual({ text: row.text, ms: row.ms });
      }
    },
  );

  it("parses the ISO form to the same instant as pg's parser, and other forms as pg's parser does", () => {
    const pgParser = pg.types.getTypeParser(pg.types.builtins.TIMESTAMPTZ, "text") as (text: string) => Date | number | null;
    const time = (value: Date | number | null) => (value instanceof Date ? value.getTime() : value);
    for (const text of ["2026-11-24 22:28:23.123+00", "2026-11-24 22:28:23+05:30", "1900-01-01 00:00:00+00:19:32", "2026-11-24 22:28:23-03:30"]) {
      expect(time(parseTimestamptz(text))).toBe(time(pgParser(text)));
    }
    expect(time(parseTimestamptz("2026-11-24 22:28:23.579999+00"))).toBe(Date.UTC(2026, 10, 24, 22, 28, 23, 579));
    for (const text of ["0099-06-01 12:00:00+00", "0044-03-15 12:00:00+00 BC", "12000-01-01 00:00:00+00", "infinity", "Tue Nov 24 22:28:23 2026 UTC"]) {
      expect(parseTimestamptz(text)).toEqual(pgParser(text));
    }
  });
});

describe("transactions on the pg pool", () => {
  // createPrismaClient's connections pipeline (BEGIN goes out with the first statement, COMMIT
  // with the final one); the same transactions also run one query at a time on a client whose
  // connections do not.
  let serial: ReturnType<typeof createPrismaClient>;
  beforeAll(async () => {
    serial = createPrismaClient(ctx.db.url);
    (poolOf(serial) as pg.Pool & { options: pg.PoolConfig & { pipeline?: boolean } }).options.pipeline = false;
    await ctx.pool.query("CREATE TABLE public.tx_probe (n int PRIMARY KEY)");
  });
  afterAll(async () => {
    await serial.$disconnect();
  });
  beforeEach(async () => {
    await ctx.pool.query("TRUNCATE tx_probe");
  });

  const stored = async () => (await ctx.pool.query<{ n: number }>("SELECT n FROM tx_probe ORDER BY n")).rows.map((r) => r.n);
  /** The Database over the client the test is run for: `pipelining` (createPrismaClient's) or the one that is not. */
  const databaseOf = (name: string) => databaseFor(name === "pipelining" ? ctx.prisma : serial);

  it("createPrismaClient's connections pipeline, and this test's second client's do not", async () => {
    const mode = async (prisma: typeof ctx.prisma) => {
      const client = await (poolOf(prisma) as pg.Pool).connect();
      client.release();
      return (client as pg.PoolClient & { pipeline?: boolean }).pipeline === true;
    };
    expect(await mode(ctx.prisma)).toBe(true);
    expect(await mode(serial)).toBe(false);
  });

  it.each(["pipelining", "one query at a time"])("commits with the final statement (%s connections)", async (name) => {
    const db = databaseOf(name);
    const value = await db.transaction(async (sql) => {
      await sql.query("INSERT INTO tx_probe VALUES (1)");
      const rows = await sql.query<{ n: number }>("INSERT INTO tx_probe VALUES ($1) RETURNING n", [2], { prepare: true, final: true });
      return rows[0].n;
    });
    expect(value).toBe(2);
    expect(await stored()).toEqual([1, 2]);
    // A transaction that runs no statement, and one without a final statement, still commit.
    await db.transaction(async () => undefined);
    await db.transaction((sql) => sql.query("INSERT INTO tx_probe VALUES (3)"));
    expect(await stored()).toEqual([1, 2, 3]);
  });

  it.each(["pipelining", "one query at a time"])("rolls everything back when a statement fails, first or final (%s connections)", async (name) => {
    const db = databaseOf(name);
    await ctx.pool.query("INSERT INTO tx_probe VALUES (9)");
    // The final statement fails after an insert: its COMMIT (sent behind it) must not keep the insert.
    const final = db.transaction(async (sql) => {
      await sql.query("INSERT INTO tx_probe VALUES (1)");
      return sql.query("INSERT INTO tx_probe VALUES (9)", [], { final: true });
    });
    await expect(final).rejects.toThrow(/duplicate key/);
    expect(sqlState(await final.catch((e: unknown) => e))).toBe("23505");
    // The first statement fails (BEGIN was sent with it).
    await expect(db.transaction((sql) => sql.query("SELECT 1 / 0"))).rejects.toThrow(/division by zero/);
    // A statement after the final one is refused.
    await expect(
      db.transaction(async (sql) => {
        await sql.query("INSERT INTO tx_probe VALUES (4)", [], { final: true });
        await sql.query("INSERT INTO tx_probe VALUES (5)");
      }),
    ).rejects.toThrow(/no statement may follow/);
    expect(await stored()).toEqual([4, 9]);
    // The pool's connections are still in step with the server: many transactions in a row work.
    for (let i = 10; i < 30; i++) {
      await db.transaction(async (sql) => {
        await sql.query("SELECT 1");
        await sql.query("INSERT INTO tx_probe VALUES ($1)", [i], { prepare: true, final: true });
      });
    }
    expect((await stored()).length).toBe(22);
  });

  it("sends COMMIT behind the final statement before its reply, and BEGIN with the first statement", async () => {
    const events: string[] = [];
    const query = pg.Client.prototype.query;
    const spy = jest.spyOn(pg.Client.prototype, "query").mockImplementation(function (this: pg.Client, ...args: unknown[]) {
      const config = args[0] as string | { text: string };
      const text = typeof config === "string" ? config : config.text;
      events.push(`send ${text}`);
      const result = (query as (...a: unknown[]) => unknown).apply(this, args);
      if (result instanceof Promise) void result.then(() => events.push(`reply ${text}`), () => undefined);
      return result as never;
    });
    try {
      await databaseFor(ctx.prisma).transaction(async (sql) => {
        await sql.query("INSERT INTO tx_probe VALUES (1)");
        await sql.query("SELECT pg_sleep(0.05)", [], { final: true });
      });
    } finally {
      spy.mockRestore();
    }
    expect(events.indexOf("send INSERT INTO tx_probe VALUES (1)")).toBeLessThan(events.indexOf("reply BEGIN"));
    expect(events.indexOf("send COMMIT")).toBeLessThan(events.indexOf("reply SELECT pg_sleep(0.05)"));
    expect(events.filter((e) => e.startsWith("send"))).toEqual(["send BEGIN", "send INSERT INTO tx_probe VALUES (1)", "send SELECT pg_sleep(0.05)", "send COMMIT"]);
    expect(await stored()).toEqual([1]);
  });

  it.each(["pipelining", "one query at a time"])("does not commit when fn catches its final statement's failure (%s connections)", async (name) => {
    const db = databaseOf(name);
    await ctx.pool.query("INSERT INTO tx_probe VALUES (9)");
    const swallowed = db.transaction(async (sql) => {
      await sql.query("INSERT INTO tx_probe VALUES (1)");
      await sql.query("INSERT INTO tx_probe VALUES (9)", [], { final: true }).catch(() => undefined);
      return "looks fine";
    });
    await expect(swallowed).rejects.toThrow(/duplicate key/);
    expect(await stored()).toEqual([9]);
    // The connection went back to the pool outside any transaction (or was discarded).
    for (let i = 0; i < 12; i++) await db.transaction((sql) => sql.query("INSERT INTO tx_probe VALUES ($1)", [20 + i], { final: true }));
    expect((await stored()).length).toBe(13);
  });

  it.each(["pipelining", "one query at a time"])("leaves no pooled connection inside a transaction when fn throws before its first reply (%s connections)", async (name) => {
    const db = databaseOf(name);
    await expect(
      db.transaction(async () => {
        throw new Error("gave up before any statement");
      }),
    ).rejects.toThrow(/gave up/);
    // The pool hands out its most recently released connection first: this autocommit insert runs
    // on the connection just used, and another connection must see it.
    await db.query("INSERT INTO tx_probe VALUES (7)");
    expect(await stored()).toEqual([7]);
  });

  it.each(["pipelining", "one query at a time"])("reports a rollback when fn swallows a failed statement that was not final (%s connections)", async (name) => {
    const db = databaseOf(name);
    await expect(
      db.transaction(async (sql) => {
        await sql.query("INSERT INTO tx_probe VALUES (1)");
        await sql.query("SELECT 1 / 0").catch(() => undefined);
        return "looks fine";
      }),
    ).rejects.toThrow(/rolled back/);
    expect(await stored()).toEqual([]);
  });

  it("does not send COMMIT ahead of a final statement whose values pg could fail to send", async () => {
    const db = databaseFor(ctx.prisma);
    const unsendable = { toPostgres: () => { throw new Error("cannot serialise"); } };
    await expect(
      db.transaction(async (sql) => {
        await sql.query("INSERT INTO tx_probe VALUES (1)");
        await sql.query("SELECT $1::text", [unsendable], { final: true });
      }),
    ).rejects.toThrow(/cannot serialise/);
    expect(await stored()).toEqual([]);
  });

  it("rolls back and discards the connection when it is cut while the pipelined COMMIT waits", async () => {
    const db = databaseFor(ctx.prisma);
    const running = db.transaction(async (sql) => {
      await sql.query("INSERT INTO tx_probe VALUES (1)");
      await sql.query("SELECT pg_sleep(5)", [], { final: true });
    });
    const outcome = running.then(() => "committed", (error: unknown) => String(error));
    // Cut the backend while the final statement runs (the COMMIT is queued behind it).
    let killed = 0;
    for (let i = 0; i < 100 && killed === 0; i++) {
      const { rows } = await ctx.pool.query<{ n: number }>(
        "SELECT count(pg_terminate_backend(pid))::int AS n FROM pg_stat_activity WHERE query = 'SELECT pg_sleep(5)' AND pid <> pg_backend_pid()",
      );
      killed = rows[0].n;
      if (killed === 0) await new Promise((resolve) => setTimeout(resolve, 20));
    }
    expect(killed).toBe(1);
    expect(await outcome).toMatch(/terminat|Connection/i);
    expect(await stored()).toEqual([]);
    await db.transaction((sql) => sql.query("INSERT INTO tx_probe VALUES (2)", [], { final: true }));
    expect(await stored()).toEqual([2]);
  });
});
