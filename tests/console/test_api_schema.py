"""A property-based run against /api/v1/openapi.json (schemathesis): generated requests to every
operation, with a district token and a town token, get no 500 and no response that breaks the
document (status code, content type, headers, body schema).

The API is served over real HTTP by a thread of its own (aiohttp on a free port) on a seeded
SQLite database; schemathesis's client calls it. A few dozen examples per operation keep the run
near half a minute."""
from __future__ import annotations

import asyncio
import shutil
import threading
from collections.abc import Iterator
from typing import Any

import pytest
import schemathesis
from aiohttp import web
from hypothesis import HealthCheck, given, settings
from rig import build_rig
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from storage.sql import SqlUnitOfWorkFactory

CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance, response_headers_conformance,
          response_schema_conformance]
EXAMPLES = 25


@pytest.fixture(scope="module")
def api_server(tmp_path_factory: pytest.TempPathFactory, sqlite_template: Any) -> Iterator[dict[str, Any]]:
    path = tmp_path_factory.mktemp("api-schema") / "ztc.db"
    shutil.copyfile(sqlite_template, path)
    loop = asyncio.new_event_loop()
    state: dict[str, Any] = {}
    ready = threading.Event()

    async def start() -> None:
        factory = SqlUnitOfWorkFactory(f"sqlite+aiosqlite:///{path}")
        rig = await build_rig(factory)
        runner = web.AppRunner(rig.app)
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        state.update(factory=factory, runner=runner, tokens=rig.tokens,
                     base=f"http://127.0.0.1:{runner.addresses[0][1]}")

    def serve() -> None:
        asyncio.set_event_loop(loop)
        try:
            loop.run_until_complete(start())
        finally:
            ready.set()
        loop.run_forever()

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    assert ready.wait(120) and "base" in state, "the API server did not start"

    async def stop() -> None:
        await state["runner"].cleanup()
        await state["factory"].dispose()

    yield state
    asyncio.run_coroutine_threadsafe(stop(), loop).result(30)
    loop.call_soon_threadsafe(loop.stop)
    thread.join(30)


def test_no_server_error_and_every_response_matches_the_document(api_server: dict[str, Any]) -> None:
    schema = schemathesis.openapi.from_url(f"{api_server['base']}/api/v1/openapi.json")
    headers = {name: {"Authorization": f"Bearer {token}"} for name, token in api_server["tokens"].items()}
    failures: list[str] = []
    operations = [result.ok() for result in schema.get_all_operations()]
    assert len(operations) >= 7  # every route of api.py is in the document (test_api checks which)
    for operation in operations:
        for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE):  # negative: values the document forbids

            @given(case=operation.as_strategy(generation_mode=mode))
            @settings(max_examples=EXAMPLES, deadline=None, database=None, derandomize=True,
                      suppress_health_check=list(HealthCheck))
            def run(case: Any) -> None:
                for username in ("qu", "shengze"):  # a district token and a town token
                    case.call_and_validate(base_url=f"{api_server['base']}/api/v1", checks=CHECKS,
                                           headers=headers[username])

            try:
                run()
            except Exception as failure:  # noqa: BLE001 - collected: every operation gets its run
                failures.append(f"{operation.label} ({mode}): {failure}")
    assert not failures, "\n\n".join(failures)


def test_digits_that_are_not_ascii_are_no_number(api_server: dict[str, Any]) -> None:
    """What the run above found: "¹".isdigit() is true, int("¹") fails (it was a 500)."""
    import requests

    auth = {"Authorization": f"Bearer {api_server['tokens']['qu']}"}
    base = f"{api_server['base']}/api/v1"
    assert requests.get(f"{base}/tickets/¹", headers=auth, timeout=10).status_code == 404
    assert requests.post(f"{base}/tickets/²/notes", json={"text": "备注"}, headers=auth, timeout=10).status_code == 404
    assert requests.get(f"{base}/tickets", params={"page": "³"}, headers=auth, timeout=10).status_code == 400
    found = requests.get(f"{base}/tickets", params={"q": "¹"}, headers=auth, timeout=10)
    assert (found.status_code, found.json()["total"]) == (200, 0)
