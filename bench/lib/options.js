"use strict";
// Command-line flags of bench/run.js.

const LIBS = ["skein", "skein-defaults", "graphile", "pgboss", "sql"];
const ALIASES = { graphileworker: "graphile", defaults: "skein-defaults", skeindefaults: "skein-defaults", plainsql: "sql", "plain-sql": "sql", ceiling: "sql", "pg-boss": "pgboss" };

function libName(raw) {
  const l = raw.toLowerCase().trim();
  return ALIASES[l] ?? ALIASES[l.replace(/[^a-z]/g, "")] ?? l;
}

const HELP = `Usage: node bench/run.js [flags]      (npm run bench / npm run bench:compare)

  --compare               run every library: Skein tuned (prefetch 100) and with its defaults
                          (skein-defaults), graphile-worker, pg-boss and the plain-SQL loop (sql, the
                          drains' ceiling) (default: Skein alone)
  --libs a,b              libraries to run: ${LIBS.join(", ")} (overrides --compare)
  --only a,b              only cases whose id starts with one of these (e.g. drain,latency,deps.chains)
  --skip a,b              skip cases whose id starts with one of these
  --scale f               multiply job counts by f (e.g. 0.1 for a quick run; default 1)
  --repeats n             runs per case, the median is reported (default 1 for Skein alone, 3 with --compare)
  --timeout s             time limit of one run of one case, in seconds (default 300, scaled, min 60)
  --database-url url      use this server (its role must be allowed to CREATE DATABASE; PostgreSQL 13
                          or later); default: an embedded PostgreSQL 18 in a temporary folder
  --backlog-rounds n      drains of 10,000 in the same database in the scale cases; the first is
                          "fresh", the last "after repeated runs" (default 5)
  --soak-minutes m        length of the soak case (default 20 at scale 1, else 20 × scale, at least 1)
  --soak-rate r           jobs per second the soak's producer creates (default 2000)
  --soak-batch b          jobs per createJobs/addJobs call in the soak (default 20)
  --soak-libs a,b         libraries the soak runs for (default skein; it runs once, whatever --repeats)
  --keep                  keep the databases (and the embedded server's folder) afterwards
  --out file              JSON results path (default bench/results/<timestamp>.json and latest.json)
  --list                  list the cases and exit
  --help
`;

function parseArgs(argv) {
  const opts = {
    compare: false,
    libs: undefined,
    only: [],
    skip: [],
    scale: 1,
    repeats: undefined,
    timeout: undefined,
    databaseUrl: undefined,
    keep: false,
    out: undefined,
    list: false,
    backlogRounds: 5,
    soakMinutes: undefined,
    soakRate: 2000,
    soakBatch: 20,
    soakLibs: undefined,
  };
  const list = (v) => v.split(",").map((s) => s.trim()).filter(Boolean);
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i];
    const [flag, inline] = arg.startsWith("--") && arg.includes("=") ? [arg.slice(0, arg.indexOf("=")), arg.slice(arg.indexOf("=") + 1)] : [arg, undefined];
    const value = () => {
      const v = inline ?? argv[++i];
      if (v === undefined) throw new Error(`${flag} needs a value`);
      return v;
    };
    const number = (min) => {
      const n = Number(value());
      if (!Number.isFinite(n) || n < min) throw new Error(`${flag} must be a number >= ${min}`);
      return n;
    };
    switch (flag) {
      case "--compare":
        opts.compare = true;
        break;
      case "--libs":
        opts.libs = list(value()).map(libName);
        for (const l of opts.libs) if (!LIBS.includes(l)) throw new Error(`--libs: unknown library ${l} (known: ${LIBS.join(", ")})`);
        break;
      case "--soak-libs":
        opts.soakLibs = list(value()).map(libName);
        for (const l of opts.soakLibs) if (!LIBS.includes(l)) throw new Error(`--soak-libs: unknown library ${l} (known: ${LIBS.join(", ")})`);
        break;
      case "--backlog-rounds":
        opts.backlogRounds = Math.round(number(2));
        break;
      case "--soak-minutes":
        opts.soakMinutes = number(0.25);
        break;
      case "--soak-rate":
        opts.soakRate = number(1);
        break;
      case "--soak-batch":
        opts.soakBatch = Math.round(number(1));
        break;
      case "--only":
        opts.only = list(value());
        break;
      case "--skip":
        opts.skip = list(value());
        break;
      case "--scale":
        opts.scale = number(0.0001);
        break;
      case "--repeats":
        opts.repeats = Math.round(number(1));
        break;
      case "--timeout":
        opts.timeout = number(1);
        break;
      case "--database-url":
        opts.databaseUrl = value();
        break;
      case "--keep":
        opts.keep = true;
        break;
      case "--out":
        opts.out = value();
        break;
      case "--list":
        opts.list = true;
        break;
      case "--help":
      case "-h":
        opts.help = true;
        break;
      default:
        throw new Error(`unknown flag ${arg} (see --help)`);
    }
  }
  opts.libs ??= opts.compare ? [...LIBS] : ["skein"];
  opts.repeats ??= opts.compare ? 3 : 1;
  opts.timeout ??= Math.max(60, 300 * Math.min(1, opts.scale * 2));
  opts.soakMinutes ??= Math.max(1, Math.round(20 * Math.min(1, opts.scale)));
  return opts;
}

module.exports = { parseArgs, HELP, LIBS };
