"use strict";
// The libraries the suite can run, by name.
module.exports = {
  skein: require("./skein"),
  graphile: require("./graphile"),
  pgboss: require("./pgboss"),
};
