"""Fixtures of the fault suite: a Rig (serve + own Redis + fake WeChat API on this run's
PostgreSQL database). `make_rig(serve_args=[...], env={...}, fresh_connections=True)` builds one with other options."""
from __future__ import annotations

import shutil
from collections.abc import AsyncIterator, Callable, Sequence
from pathlib import Path
from typing import Any

import pytest
from harness import FakeWeChatServer, OwnRedis, Rig

pytestmark = pytest.mark.skipif(shutil.which("redis-server") is None, reason="redis-server is not installed")


@pytest.fixture
async def make_rig(postgres_database: str, tmp_path: Path) -> AsyncIterator[Callable[..., Any]]:
    """`await make_rig(serve_args=(), env={})`: a seeded, started Rig; stopped and killed at the end."""
    made: list[tuple[Rig, OwnRedis, FakeWeChatServer]] = []

    async def make(serve_args: Sequence[str] = (), env: dict[str, str] | None = None,
                   fresh_connections: bool = False) -> Rig:
        directory = tmp_path / f"rig{len(made)}"
        (directory / "redis").mkdir(parents=True)
        redis, wechat = OwnRedis(directory / "redis"), FakeWeChatServer()
        redis.start()
        await wechat.start()
        rig = Rig(postgres_database, redis, wechat, directory, serve_args=serve_args, env=env or {},
                  fresh_connections=fresh_connections)
        made.append((rig, redis, wechat))
        await rig.seed()
        await rig.start()
        return rig

    try:
        yield make
    finally:
        for rig, redis, wechat in made:
            await rig.stop()
            redis.kill()
            await wechat.close()


@pytest.fixture
async def rig(make_rig: Callable[..., Any]) -> Rig:
    return await make_rig()
