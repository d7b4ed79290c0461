// @ts-check
// The Skein dashboard: a few pages over the HTTP API, updated live by its
// Server-Sent Events. ES modules with JSDoc types (checked by `npm run
// typecheck`), no build step; uPlot and ELK come from the server's /ui/vendor/.
// The token the user logs in with is kept in sessionStorage and sent as a
// bearer token.
import { graphPage, jobPage } from "./job.js";
import { api, byId, leavePage, main, session, showError } from "./lib.js";
import { overviewPage } from "./overview.js";
import { dlqPage, jobsPage, limitsPage, schedulesPage, submitPage } from "./pages.js";
import { workersPage } from "./workers.js";
import { queuesPage } from "./queues.js";

/**
 * The login form, with an optional message.
 * @param {string} [message]
 */
function loginPage(message) {
  byId("nav").hidden = true;
  byId("logout").hidden = true;
  byId("who").textContent = "";
  main.innerHTML = `<form class="login" id="login">
    <h1>Log in</h1>
    <p class="muted">Paste the admin token or a tenant token (<code>skein tokens create --tenant orgA</code>).</p>
    <input id="token" type="password" autocomplete="off" placeholder="token">
    <button class="primary" type="submit">Log in</button>
    ${message ? `<p class="error"></p>` : ""}
  </form>`;
  const error = main.querySelector(".login .error");
  if (error) error.textContent = message ?? "";
  byId("login").addEventListener("submit", async (e) => {
    e.preventDefault();
    session.token = /** @type {HTMLInputElement} */ (byId("token")).value.trim();
    try {
      session.me = await api("/api/me");
      sessionStorage.setItem("skein-token", session.token);
      location.hash = "#/";
      void route();
    } catch (error) {
      session.token = null;
      loginPage(`Refused: ${error instanceof Error ? error.message : String(error)}`);
    }
  });
}

/** @type {Record<string, (query: string) => Promise<void>>} */
const PAGES = {
  "/jobs": jobsPage,
  "/graph": graphPage,
  "/submit": submitPage,
  "/dlq": dlqPage,
  "/workers": workersPage,
  "/queues": queuesPage,
  "/schedules": schedulesPage,
  "/limits": limitsPage,
};

/** Shows the navigation for the logged-in user. */
function showNav() {
  const me = /** @type {Me} */ (session.me);
  byId("nav").hidden = false;
  byId("logout").hidden = false;
  byId("who").textContent = me.role === "admin" ? "admin" : `tenant ${me.tenant}`;
  for (const a of document.querySelectorAll("nav a.admin")) /** @type {HTMLElement} */ (a).hidden = me.role !== "admin";
}

/** Shows the page the location's hash names. */
async function route() {
  const mine = ++session.generation;
  leavePage();
  if (!session.token) return loginPage();
  if (!session.me) {
    try {
      session.me = await api("/api/me");
    } catch {
      session.token = null;
      sessionStorage.removeItem("skein-token");
      return loginPage("Your token was refused; log in again.");
    }
  }
  showNav();
  const [path, query] = location.hash.replace(/^#/, "").split("?");
  for (const a of document.querySelectorAll("nav a")) a.classList.toggle("active", a.getAttribute("href") === `#${path || "/"}`);
  main.innerHTML = `<p class="muted">Loading…</p>`;
  try {
    if (path.startsWith("/job/")) await jobPage(decodeURIComponent(path.slice(5)));
    else await (PAGES[path] ?? overviewPage)(query ?? "");
  } catch (error) {
    if (session.generation !== mine) return; // an older page failed after the user left it
    main.innerHTML = "";
    showError(error);
  }
}

byId("logout").addEventListener("click", () => {
  sessionStorage.removeItem("skein-token");
  session.token = null;
  session.me = null;
  leavePage();
  loginPage();
});
window.addEventListener("hashchange", () => void route());
void route();
