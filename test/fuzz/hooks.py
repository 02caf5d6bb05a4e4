"""Schemathesis hooks of the fuzz suite (test/fuzz/openapi.test.ts).

Every fuzzed request is authenticated as a fuzzing user of the role GEF_FUZZ_ROLE (USER or
ADMIN). The suite hands over the first one (GEF_FUZZ_TOKEN). Fuzzed requests may end that
user's session for good: POST /auth/logout and /auth/logout-all, DELETE /api/v1/user/me or
/api/v1/user/<own id or e-mail>. When a request carrying the current token is answered 401,
the token is checked with GET /api/v1/user/me; if the API refuses it there too, a fresh user
of the same role is registered (ADMINs by the SUPERADMIN) and the following cases use it.
So destructive routes are fuzzed like the others without breaking the rest of the run.

Every user created is appended to GEF_FUZZ_USERS_FILE (one JSON object a line) for the
suite's report.
"""

from __future__ import annotations

import json
import os
import threading
import urllib.error
import urllib.request
import uuid

import schemathesis

API = os.environ["GEF_FUZZ_API_URL"].rstrip("/")
ROLE = os.environ.get("GEF_FUZZ_ROLE", "USER")
PASSWORD = os.environ.get("GEF_FUZZ_PASSWORD", "Fuzz-Passw0rd!-" + uuid.uuid4().hex[:8])
SUPERADMIN_EMAIL = os.environ.get("GEF_FUZZ_SUPERADMIN_EMAIL", "")
SUPERADMIN_PASSWORD = os.environ.get("GEF_FUZZ_SUPERADMIN_PASSWORD", "")
USERS_FILE = os.environ.get("GEF_FUZZ_USERS_FILE")


def call(method: str, path: str, body: object | None = None, token: str | None = None) -> tuple[int, dict]:
    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(API + path, data=data, method=method)
    if data is not None:
        request.add_header("Content-Type", "application/json")
    if token:
        request.add_header("Authorization", "Bearer " + token)
    try:
        with urllib.request.urlopen(request, timeout=60) as response:
            return response.status, json.loads(response.read() or b"{}")
    except urllib.error.HTTPError as error:
        try:
            return error.code, json.loads(error.read() or b"{}")
        except ValueError:
            return error.code, {}


def login(email: str, password: str) -> str:
    status, reply = call("POST", "/auth", {"email": email, "password": password})
    if status != 200:
        raise RuntimeError(f"login of {email} failed: {status} {reply}")
    return reply["access_token"]


class Session:
    """The fuzzing user the cases are sent as; replaced when the API stops accepting it."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.token: str | None = os.environ.get("GEF_FUZZ_TOKEN") or None
        self.retired: set[str] = set()

    def current(self) -> str:
        with self.lock:
            if self.token is None:
                self.token = self._new_user()
            return self.token

    def check(self, token: str) -> None:
        """A request with `token` was refused: replace the user if the token is dead."""
        with self.lock:
            if token != self.token or token in self.retired:
                return
            status, _ = call("GET", "/api/v1/user/me", token=token)
            if status == 401:
                self.retired.add(token)
                self.token = self._new_user()

    def _new_user(self) -> str:
        email = f"fuzz-{ROLE.lower()}-{uuid.uuid4().hex[:12]}@example.org"
        body = {"email": email, "name": f"Fuzzing {ROLE}", "password": PASSWORD}
        admin_token = None
        if ROLE != "USER":
            body["role"] = ROLE
            admin_token = login(SUPERADMIN_EMAIL, SUPERADMIN_PASSWORD)
        status, reply = call("POST", "/api/v1/user", body, token=admin_token)
        if status != 200:
            raise RuntimeError(f"cannot register a fuzzing {ROLE}: {status} {reply}")
        token = login(email, PASSWORD)
        if USERS_FILE:
            with open(USERS_FILE, "a", encoding="utf-8") as out:
                out.write(json.dumps({"id": reply["data"]["id"], "email": email, "role": ROLE}) + "\n")
        return token


SESSION = Session()


@schemathesis.auth(refresh_interval=None)
class FuzzingUser:
    def get(self, case, context):
        return SESSION.current()

    def set(self, case, data, context):
        case.headers = case.headers or {}
        case.headers["Authorization"] = f"Bearer {data}"


@schemathesis.hook
def after_call(context, case, response):
    if response.status_code != 401:
        return
    sent = (case.headers or {}).get("Authorization", "")
    if isinstance(sent, str) and sent.startswith("Bearer "):
        SESSION.check(sent[len("Bearer ") :])
