"use strict";
// The libraries the suite can run, by name. An adapter's `kinds` lists the
// kinds of case it takes part in (every kind when absent); `family` names the
// adapters that share a schema, and so template and backlog databases.
const { skein, skeinDefaults } = require("./skein");

module.exports = {
  skein,
  "skein-defaults": skeinDefaults,
  graphile: require("./graphile"),
  pgboss: require("./pgboss"),
  sql: require("./sql"),
};
