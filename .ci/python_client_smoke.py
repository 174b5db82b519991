"""Drives the live server through a Python client generated from openapi.json by
openapi-python-client: sign up, log in, read /user/me, write and page through posts, enqueue a
task and poll it to its result, run into the task endpoint's rate limit, log out, and be refused
afterwards.

Usage: python python_client_smoke.py BASE_URL
"""

import sys
import time
import uuid

from rust_api_boilerplate_client import AuthenticatedClient, Client
from rust_api_boilerplate_client.api.login import login, logout
from rust_api_boilerplate_client.api.posts import create_post, read_posts
from rust_api_boilerplate_client.api.tasks import create_task, read_task
from rust_api_boilerplate_client.api.users import create_user, read_user, read_users_me
from rust_api_boilerplate_client.models import (
    ErrorBody,
    LoginForm,
    PaginatedPostRead,
    PostCreate,
    PostRead,
    TaskCreated,
    TaskInfo,
    TaskStatus,
    Token,
    UserCreate,
    UserRead,
)


def main(base_url: str) -> None:
    anonymous = Client(base_url=base_url, raise_on_unexpected_status=True)
    username = "py" + uuid.uuid4().hex[:10]
    password = "python-client-password"

    created = create_user.sync(
        client=anonymous,
        body=UserCreate(name="Py Client", username=username, email=f"{username}@example.com", password=password),
    )
    assert isinstance(created, UserRead), created
    assert created.username == username

    missing = read_user.sync_detailed(client=anonymous, username="nobody-" + username)
    assert missing.status_code == 404, missing
    assert isinstance(missing.parsed, ErrorBody) and missing.parsed.detail == "User not found", missing.parsed

    token = login.sync(client=anonymous, body=LoginForm(username=username, password=password))
    assert isinstance(token, Token), token

    authed = AuthenticatedClient(base_url=base_url, token=token.access_token, raise_on_unexpected_status=True)
    me = read_users_me.sync(client=authed)
    assert isinstance(me, UserRead) and me.id == created.id, me

    for n in range(3):
        post = create_post.sync(username, client=authed, body=PostCreate(title=f"Post {n}", text="From Python"))
        assert isinstance(post, PostRead) and post.created_by_user_id == created.id, post
    page = read_posts.sync(username, client=anonymous, page=2, items_per_page=2)
    assert isinstance(page, PaginatedPostRead), page
    assert (page.total_count, page.has_more, [p.title for p in page.data]) == (3, False, ["Post 2"]), page

    task = create_task.sync(client=authed, message="from python")
    assert isinstance(task, TaskCreated), task
    for _ in range(100):
        info = read_task.sync(task.id, client=anonymous)
        assert isinstance(info, TaskInfo), info
        if info.status in (TaskStatus.COMPLETE, TaskStatus.FAILED):
            break
        time.sleep(0.1)
    assert info.status == TaskStatus.COMPLETE and info.result == "Task from python is complete!", info

    # The task endpoint is rate limited: keep going until the documented 429.
    for _ in range(50):
        limited = create_task.sync_detailed(client=authed, message="again")
        if limited.status_code == 429:
            break
        assert limited.status_code == 201, limited
    assert limited.status_code == 429, limited
    assert isinstance(limited.parsed, ErrorBody) and limited.parsed.detail == "Rate limit exceeded", limited.parsed
    assert int(limited.headers["retry-after"]) >= 1 and limited.headers["x-ratelimit-remaining"] == "0"

    logout.sync(client=authed)
    refused = read_users_me.sync_detailed(client=authed)
    assert refused.status_code == 401, refused
    assert isinstance(refused.parsed, ErrorBody), refused.parsed
    print("python client: sign-up, login, me, posts, a task, its rate limit, logout and refusal all behaved")


if __name__ == "__main__":
    main(sys.argv[1])
