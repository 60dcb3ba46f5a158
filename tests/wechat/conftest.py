"""Fixtures for the WeChat edge: a fake WeChat API served locally."""
from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from aiohttp.test_utils import TestClient, TestServer

from bot.wechat.fake_api import FakeWeChatAPI


@pytest.fixture
def fake_api() -> FakeWeChatAPI:
    return FakeWeChatAPI(appid="wxtestappid000001", secret="test-secret")


@pytest.fixture
async def fake_api_client(fake_api: FakeWeChatAPI) -> AsyncIterator[TestClient]:
    client = TestClient(TestServer(fake_api.create_app()))
    await client.start_server()
    try:
        yield client
    finally:
        await client.close()
