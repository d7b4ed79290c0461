import pg from "pg";

const TIMESTAMPTZ = pg.types.builtins.TIMESTAMPTZ;

/** `pg`'s own parser (looked up when used, so a parser set with `pg.types.setTypeParser` applies): a number for ±infinity. */
function pgTimestamptz(text: string): Date | number | null {
  return (pg.types.getTypeParser(TIMESTAMPTZ, "text") as (text: string) => Date | number | null)(text);
}

/** The digit at `text[i]`, or NaN (which poisons whatever it is added to). */
function digit(text: string, i: number): number {
  const d = text.charCodeAt(i) - 48;
  return d >= 0 && d <= 9 ? d : Number.NaN;
}

function twoDigits(text: string, i: number): number {
  return digit(text, i) * 10 + digit(text, i + 1);
}

/**
 * Parses PostgreSQL's text form of a `timestamptz` in the ISO DateStyle
 * (`2026-11-24 22:28:23.123456+00`, any offset) with integer arithmetic
 * (a claimed job carries half a dozen timestamps; `pg`'s regular-expression
 * parser is slower: docs/BENCHMARKS.md). Milliseconds are the first three
 * fractional digits (a `Date` holds no more). Any other form (another
 * DateStyle, a year outside 1000-9999, BC, infinity) goes to `pg`'s parser,
 * which returns a number for ±infinity (columns Skein reads never hold it).
 */
export function parseTimestamptz(text: string): Date | number | null {
  const n = text.length;
  if (
    n >= 22 &&
    text.charCodeAt(4) === 45 && // -
    text.charCodeAt(7) === 45 &&
    text.charCodeAt(10) === 32 && // space
    text.charCodeAt(13) === 58 && // :
    text.charCodeAt(16) === 58
  ) {
    const year = twoDigits(text, 0) * 100 + twoDigits(text, 2);
    let i = 19;
    let ms = 0;
    if (text.charCodeAt(i) === 46 /* . */) {
      i++;
      for (let scale = 100; i < n; i++, scale /= 10) {
        const d = digit(text, i);
        if (Number.isNaN(d)) break;
        if (scale >= 1) ms += d * scale;
      }
    }
    const sign = text.charCodeAt(i) === 43 /* + */ ? 1 : text.charCodeAt(i) === 45 /* - */ ? -1 : 0;
    let offsetSeconds = twoDigits(text, i + 1) * 3600;
    i += 3;
    if (i < n && text.charCodeAt(i) === 58) {
      offsetSeconds += twoDigits(text, i + 1) * 60;
      i += 3;
      if (i < n && text.charCodeAt(i) === 58) {
        offsetSeconds += twoDigits(text, i + 1);
        i += 3;
      }
    }
    const time =
      Date.UTC(year, twoDigits(text, 5) - 1, twoDigits(text, 8), twoDigits(text, 11), twoDigits(text, 14), twoDigits(text, 17), ms) -
      sign * offsetSeconds * 1000;
    if (sign !== 0 && i === n && year >= 1000 && !Number.isNaN(time)) return new Date(time);
  }
  return pgTimestamptz(text);
}

/**
 * The type parsers for Skein's own statements on the `pg` pool: `pg`'s
 * defaults, with the faster `timestamptz` parser. Set per query, so the
 * pool's other users (Prisma's adapter sets its own) are not affected.
 */
export const SKEIN_TYPES = {
  getTypeParser: ((oid: number, format?: string) =>
    oid === TIMESTAMPTZ && format !== "binary" ? parseTimestamptz : pg.types.getTypeParser(oid, format as "text")) as typeof pg.types.getTypeParser,
};
