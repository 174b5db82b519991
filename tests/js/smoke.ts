// Drives the live server through types generated from openapi.json by openapi-typescript and
// the openapi-fetch client: sign up, log in, create a post and read it back, page through the
// posts, enqueue a task and poll it, run into the rate limit, and read typed errors.
//
// Usage: node smoke.js BASE_URL (after `tsc`; see package.json)
import createClient from "openapi-fetch";
import type { components, paths } from "./generated/api.js";

type ErrorBody = components["schemas"]["ErrorBody"];

function check(condition: boolean, what: string, detail?: unknown): asserts condition {
  if (!condition) {
    throw new Error(`${what}: ${JSON.stringify(detail)}`);
  }
}

async function main(baseUrl: string): Promise<void> {
  const anonymous = createClient<paths>({ baseUrl });
  const username = "ts" + Math.random().toString(36).slice(2, 12).replace(/[^a-z0-9]/g, "");
  const password = "typescript-client-password";

  const created = await anonymous.POST("/api/v1/user", {
    body: { name: "TS Client", username, email: `${username}@example.com`, password },
  });
  check(created.response.status === 201 && created.data !== undefined, "sign-up", created.error);
  const user: components["schemas"]["UserRead"] = created.data;
  check(user.username === username && user.tier_id === null, "the new user", user);

  const missing = await anonymous.GET("/api/v1/user/{username}", {
    params: { path: { username: "nobody" + username } },
  });
  const notFound: ErrorBody | undefined = missing.error;
  check(missing.response.status === 404 && notFound?.detail === "User not found", "404", notFound);

  // The login form is OAuth2's: form-encoded, not JSON.
  const login = await anonymous.POST("/api/v1/login", {
    body: { username, password },
    bodySerializer: (form) => new URLSearchParams(form as Record<string, string>),
    headers: { "Content-Type": "application/x-www-form-urlencoded" },
  });
  check(login.data !== undefined, "login", login.error);
  const authed = createClient<paths>({
    baseUrl,
    headers: { Authorization: `Bearer ${login.data.access_token}` },
  });

  const me = await authed.GET("/api/v1/user/me");
  check(me.data?.id === user.id, "me", me.error);

  for (const n of [1, 2, 3]) {
    const post = await authed.POST("/api/v1/{username}/post", {
      params: { path: { username } },
      body: { title: `Post ${n}`, text: "From TypeScript", media_url: null },
    });
    check(post.response.status === 201 && post.data?.created_by_user_id === user.id, "post", post.error);
  }
  const page = await anonymous.GET("/api/v1/{username}/posts", {
    params: { path: { username }, query: { page: 2, items_per_page: 2 } },
  });
  check(page.data !== undefined, "a page", page.error);
  const titles = page.data.data.map((post) => post.title);
  check(page.data.total_count === 3 && !page.data.has_more && titles.join() === "Post 3", "page 2", page.data);

  const first = page.data.data[0];
  check(first !== undefined, "a post on page 2");
  const read = await anonymous.GET("/api/v1/{username}/post/{id}", {
    params: { path: { username, id: first.id } },
  });
  check(read.data?.text === "From TypeScript", "read back", read.error);

  const task = await authed.POST("/api/v1/tasks/task", { params: { query: { message: "from ts" } } });
  check(task.data !== undefined, "enqueue", task.error);
  let info: components["schemas"]["TaskInfo"] | undefined;
  for (let i = 0; i < 100; i++) {
    const polled = await anonymous.GET("/api/v1/tasks/task/{task_id}", {
      params: { path: { task_id: task.data.id } },
    });
    info = polled.data;
    if (info?.status === "complete" || info?.status === "failed") break;
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
  check(info?.status === "complete" && info.result === "Task from ts is complete!", "the task", info);

  let limited;
  for (let i = 0; i < 50; i++) {
    limited = await authed.POST("/api/v1/tasks/task", { params: { query: { message: "again" } } });
    if (limited.response.status === 429) break;
  }
  check(limited?.response.status === 429, "a 429", limited?.error);
  check(limited.error?.detail === "Rate limit exceeded", "its message", limited.error);
  const retryAfter = Number(limited.response.headers.get("retry-after"));
  check(retryAfter >= 1 && limited.response.headers.get("x-ratelimit-remaining") === "0", "its headers");

  console.log("typescript client: sign-up, login, me, posts, a page, a task, its 429 all behaved");
}

const baseUrl = process.argv[2];
if (baseUrl === undefined) {
  console.error("usage: node smoke.js BASE_URL");
  process.exit(2);
}
main(baseUrl).catch((err: unknown) => {
  console.error(err);
  process.exit(1);
});
