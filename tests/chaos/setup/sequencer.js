// Runs the scenarios in a fixed order, cheapest first, so a quick failure shows early.
const Sequencer = require("@jest/test-sequencer").default;

const ORDER = ["bad-input", "http-requests", "migrations", "pause", "graph-building", "workflow", "db-faults", "crash"];
const rank = (file) => {
  const i = ORDER.findIndex((name) => file.endsWith(`${name}.chaos.ts`));
  return i === -1 ? ORDER.length : i;
};

class ChaosSequencer extends Sequencer {
  sort(tests) {
    return [...tests].sort((a, b) => rank(a.path) - rank(b.path) || a.path.localeCompare(b.path));
  }
}

module.exports = ChaosSequencer;
