"""Drives the live server through a Python client generated from openapi.json by
openapi-python-client: sign up, log in, read /user/me, log out, and be refused afterwards.

Usage: python python_client_smoke.py BASE_URL
"""

import sys
import uuid

from rust_api_boilerplate_client import AuthenticatedClient, Client
from rust_api_boilerplate_client.api.login import login, logout
from rust_api_boilerplate_client.api.users import create_user, read_user, read_users_me
from rust_api_boilerplate_client.models import ErrorBody, LoginForm, Token, UserCreate, UserRead


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

    logout.sync(client=authed)
    refused = read_users_me.sync_detailed(client=authed)
    assert refused.status_code == 401, refused
    assert isinstance(refused.parsed, ErrorBody), refused.parsed
    print("python client: sign-up, login, me, logout and refusal all behaved")


if __name__ == "__main__":
    main(sys.argv[1])
