import pg from "pg";
import { databaseFor } from "../src/db/database";
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
