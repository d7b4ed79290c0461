"use strict";
// Child processes (producers and workers) driven over IPC. Every child is
// registered so that it is killed when the benchmark exits, however it exits.
const { fork } = require("node:child_process");
const path = require("node:path");
const { clearTimeout } = require("node:timers");

const CHILD = path.join(__dirname, "..", "child.js");
// Extra node flags for the children, for profiling: BENCH_CHILD_NODE_ARGS="--cpu-prof --cpu-prof-dir=/tmp/prof".
const EXEC_ARGV = (process.env.BENCH_CHILD_NODE_ARGS ?? "").split(/\s+/).filter(Boolean);
const live = new Set();

class Child {
  constructor(label) {
    this.label = label;
    this.nextId = 1;
    this.pending = new Map();
    this.onEvent = () => undefined;
    this.exited = false;
    this.proc = fork(CHILD, [label], { stdio: ["ignore", "inherit", "inherit", "ipc"], env: { ...process.env }, execArgv: EXEC_ARGV });
    live.add(this);
    this.proc.on("message", (msg) => {
      if (msg && typeof msg.id === "number") {
        const waiter = this.pending.get(msg.id);
        if (!waiter) return;
        this.pending.delete(msg.id);
        clearTimeout(waiter.timer);
        if (msg.ok) waiter.resolve(msg.result);
        else waiter.reject(new Error(`${this.label}: ${msg.error}`));
      } else if (msg && msg.event) {
        this.onEvent(msg);
      }
    });
    this.proc.on("exit", (code, signal) => {
      this.exited = true;
      live.delete(this);
      for (const waiter of this.pending.values()) {
        clearTimeout(waiter.timer);
        waiter.reject(new Error(`${this.label} exited (${signal ?? code}) during ${waiter.cmd}`));
      }
      this.pending.clear();
    });
  }

  /** Sends a command; rejects after `timeoutMs` (and kills the child, which is then unusable). */
  call(cmd, args = {}, timeoutMs = 120_000) {
    if (this.exited) return Promise.reject(new Error(`${this.label} has exited`));
    const id = this.nextId++;
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.pending.delete(id);
        this.kill();
        reject(new Error(`${this.label}: ${cmd} took longer than ${Math.round(timeoutMs / 1000)} s; killed`));
      }, timeoutMs);
      this.pending.set(id, { resolve, reject, timer, cmd });
      this.proc.send({ id, cmd, args });
    });
  }

  /** Asks the child to exit, and kills it if it has not within `graceMs`. */
  async close(graceMs = 5000) {
    if (this.exited) return;
    const gone = new Promise((resolve) => this.proc.once("exit", resolve));
    try {
      this.proc.send({ id: 0, cmd: "exit" });
    } catch {
      // channel already closed
    }
    const timer = setTimeout(() => this.kill(), graceMs);
    await gone;
    clearTimeout(timer);
  }

  kill() {
    if (!this.exited) {
      try {
        this.proc.kill("SIGKILL");
      } catch {
        // already gone
      }
    }
  }
}

function killAll() {
  for (const child of live) child.kill();
}

module.exports = { Child, killAll };
