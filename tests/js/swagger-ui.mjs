// Swagger UI in a real browser (Debian's Chromium, driven by playwright-core) against the live
// server: the page renders from the server alone, lists every operation of the spec under its
// tag, logs in through Authorize (OAuth2 password flow), runs "Try it out" on GET /user/me, and
// shows a rate-limited operation's 429 with its headers. Screenshots go to target/browser/.
//
// Usage: node swagger-ui.mjs BASE_URL
import { mkdirSync } from "node:fs";
import { chromium } from "playwright-core";

const baseUrl = process.argv[2];
if (!baseUrl) {
  console.error("usage: node swagger-ui.mjs BASE_URL");
  process.exit(2);
}
const shots = new URL("../../target/browser/", import.meta.url).pathname;
mkdirSync(shots, { recursive: true });

function check(condition, what) {
  if (!condition) throw new Error(what);
}

// Swagger UI's DOM id of an operation: `operations-<tag>-<operationId>`, spaces as `_` (this
// API's tags and ids are snake_case).
const operationDomId = (tag, id) => `operations-${tag}-${id}`.replace(/\s/g, "_");

async function signUp() {
  const username = "ui" + Date.now().toString(36);
  const password = "browser-test-password";
  const response = await fetch(`${baseUrl}/api/v1/user`, {
    method: "POST",
    headers: { "Content-Type": "application/json" },
    body: JSON.stringify({ name: "Browser", username, email: `${username}@example.com`, password }),
  });
  check(response.status === 201, `sign-up answered ${response.status}`);
  return { username, password };
}

async function expand(page, domId) {
  const block = page.locator(`#${domId}`);
  await block.locator(".opblock-summary").first().click();
  await block.locator("button.try-out__btn").click();
  return block;
}

/** Executes an expanded operation; returns the status and headers shown. */
async function execute(block) {
  const previous = await block.locator(".live-responses-table").count();
  await block.locator("button.execute").click();
  const status = block.locator(".live-responses-table tr.response .response-col_status").first();
  await status.waitFor();
  if (previous) await block.page().waitForTimeout(50);
  await block.locator(".btn-clear").first().waitFor();
  return {
    status: (await status.innerText()).trim().split(/\s+/)[0],
    text: await block.locator(".live-responses-table").first().innerText(),
  };
}

async function main() {
  const user = await signUp();
  const spec = await (await fetch(`${baseUrl}/openapi.json`)).json();
  const origin = new URL(baseUrl).origin;

  const browser = await chromium.launch({
    executablePath: process.env.CHROMIUM ?? "/usr/bin/chromium",
    args: [
      "--headless",
      "--no-sandbox",
      "--disable-gpu",
      "--disable-background-networking",
      "--disable-component-update",
      "--disable-sync",
      "--no-first-run",
    ],
  });
  const problems = [];
  try {
    const page = await browser.newPage({ viewport: { width: 1400, height: 1000 } });
    page.on("console", (message) => {
      // The 429s this test provokes are expected, and Chromium logs each one.
      const provoked = message.text().includes("status of 429");
      if (message.type() === "error" && !provoked) problems.push(`console: ${message.text()}`);
    });
    page.on("pageerror", (error) => problems.push(`page error: ${error.message}`));
    page.on("request", (request) => {
      const url = request.url();
      const local = [origin, `blob:${origin}`, "data:"].some((prefix) => url.startsWith(prefix));
      if (!local) {
        problems.push(`external request: ${url}`);
      }
    });
    page.on("response", (response) => {
      // The 429s this test provokes are expected; nothing else may fail.
      if (response.status() >= 400 && response.status() !== 429) {
        problems.push(`${response.status()} for ${response.url()}`);
      }
    });

    await page.goto(`${baseUrl}/docs`, { waitUntil: "networkidle" });
    await page.locator(".swagger-ui .info .title").waitFor();
    await page.locator(".swagger-ui .opblock").first().waitFor();
    await page.screenshot({ path: `${shots}docs.png`, fullPage: false });

    // Every operation of the spec, under its tag.
    let listed = 0;
    for (const item of Object.values(spec.paths)) {
      for (const operation of Object.values(item)) {
        const domId = operationDomId(operation.tags[0], operation.operationId);
        const count = await page.locator(`#${domId}`).count();
        check(count === 1, `${operation.operationId} is not listed under ${operation.tags[0]}`);
        listed += 1;
      }
    }

    // Authorize with a username and password (the OAuth2 password flow).
    await page.locator(".auth-wrapper .authorize").click();
    const modal = page.locator(".modal-ux");
    const oauth = modal.locator(".auth-container").filter({ hasText: "OAuth2PasswordBearer" });
    await oauth.locator("#oauth_username").fill(user.username);
    await oauth.locator("#oauth_password").fill(user.password);
    await oauth.locator("button.authorize").click();
    await oauth.locator("button:has-text('Logout')").waitFor();
    check((await oauth.innerText()).includes("Authorized"), "the password flow did not authorize");
    await oauth.screenshot({ path: `${shots}authorized.png` });
    await modal.locator("button.close-modal").click();

    // Try it out: GET /user/me as the logged-in user.
    const me = await expand(page, operationDomId("users", "read_users_me"));
    const shown = await execute(me);
    check(shown.status === "200", `GET /user/me showed ${shown.status}`);
    check(shown.text.includes(`"username": "${user.username}"`), "GET /user/me showed another user");
    await me.screenshot({ path: `${shots}user-me.png` });

    // A rate-limited operation, past its limit: the 429 and the limiter's headers.
    const task = await expand(page, operationDomId("tasks", "create_task"));
    await task.locator("input[placeholder='message']").fill("from the browser");
    let result;
    for (let i = 0; i < 60; i++) {
      result = await execute(task);
      if (result.status === "429") break;
      check(result.status === "201", `POST /tasks/task showed ${result.status}`);
    }
    check(result.status === "429", "the limit was never reached");
    const text = result.text.toLowerCase();
    check(text.includes("rate limit exceeded"), "429 without its message");
    check(text.includes("retry-after") && text.includes("x-ratelimit-remaining: 0"), "429 without headers");
    await task.screenshot({ path: `${shots}rate-limited.png` });

    // ReDoc renders from the server alone too.
    await page.goto(`${baseUrl}/redoc`, { waitUntil: "networkidle" });
    await page.locator(".api-content").waitFor();
    await page.screenshot({ path: `${shots}redoc.png` });

    check(problems.length === 0, `the browser saw problems:\n${problems.join("\n")}`);
    console.log(`swagger ui: ${listed} operations listed, authorize, try it out and the 429 behaved`);
  } finally {
    await browser.close();
  }
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
