"""NLU through a Rasa 3.6 server's POST /model/parse, time-limited, with the embedded engine as the
fallback. The Rasa model knows intents and entities only: `category` and `category_ranking` come
from the embedded engine (the category comparison against a Rasa DIET model is in bench/)."""
from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Sequence
from typing import Any, Protocol

import aiohttp

from bot.core.parse import ParseResult
from bot.core.people import Station

log = logging.getLogger(__name__)


class _SyncParser(Protocol):
    def parse_sync(self, text: str) -> dict[str, Any]: ...

    async def learn_places(self, stations: Sequence[Station]) -> None: ...


class RasaUnavailable(Exception):
    """The server did not give a usable answer in time."""


def _valid(result: Any) -> bool:
    if not isinstance(result, dict):
        return False
    intent = result.get("intent")
    if not isinstance(intent, dict) or not isinstance(intent.get("name"), str):
        return False
    if not isinstance(intent.get("confidence"), (int, float)):
        return False
    ents = result.get("entities", [])
    return isinstance(ents, list) and all(isinstance(e, dict) and "entity" in e and "value" in e for e in ents)


def _entity(e: dict[str, Any]) -> dict[str, Any]:
    # DIET reports `confidence_entity`; our contract (and the regex extractors) say `confidence`
    out = dict(e)
    out.setdefault("confidence", float(e.get("confidence_entity", 1.0)))
    return out


class RasaNLU:
    """bot.core.ports.NLU backed by a Rasa server."""

    def __init__(self, url: str, timeout: float, fallback: _SyncParser,
                 session: aiohttp.ClientSession | None = None, warn_every: float = 60.0) -> None:
        self.url = url.rstrip("/") + "/model/parse"
        self.timeout = timeout
        self.fallback = fallback
        self._session = session
        self._warn_every = warn_every
        self._last_warning = -1e9
        self.failures = 0

    async def _client(self) -> aiohttp.ClientSession:
        if self._session is None or self._session.closed:
            self._session = aiohttp.ClientSession()
        return self._session

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()

    async def parse_rasa(self, text: str) -> dict[str, Any]:
        """The server's own answer, validated; RasaUnavailable on any failure."""
        session = await self._client()
        try:
            async with asyncio.timeout(self.timeout):
                async with session.post(self.url, json={"text": text}) as resp:
                    if resp.status != 200:
                        raise RasaUnavailable(f"HTTP {resp.status}")
                    result = await resp.json(content_type=None)
        except RasaUnavailable:
            raise
        except TimeoutError as exc:
            raise RasaUnavailable(f"no answer within {self.timeout:g} s") from exc
        except (aiohttp.ClientError, ValueError, OSError) as exc:
            raise RasaUnavailable(f"{type(exc).__name__}: {exc}") from exc
        if not _valid(result):
            raise RasaUnavailable("answer is not a Rasa parse result")
        return result

    async def learn_places(self, stations: Sequence[Station]) -> None:
        """The Rasa model knows the places of its lookup table (`zhitongche nlu places`, then a
        retrain); until then the embedded engine's places stand in when Rasa found none."""
        await self.fallback.learn_places(stations)

    async def parse(self, text: str) -> ParseResult:
        local = self.fallback.parse_sync(text)
        try:
            remote = await self.parse_rasa(text)
        except RasaUnavailable as exc:
            self.failures += 1
            now = time.monotonic()
            if now - self._last_warning >= self._warn_every:  # one clear line, not one per message
                self._last_warning = now
                log.warning("Rasa NLU at %s unavailable (%s); the embedded engine answers instead "
                            "(%d failures so far)", self.url, exc, self.failures)
            local["backend"] = "embedded-fallback"
            return ParseResult.from_dict(local)
        entities = [_entity(e) for e in remote.get("entities", [])]
        if not any(e["entity"] == "place" for e in entities):
            entities += [e for e in local["entities"] if e["entity"] == "place"]
        return ParseResult.from_dict({
            "text": text,
            "intent": {"name": remote["intent"]["name"], "confidence": float(remote["intent"]["confidence"])},
            "entities": entities,
            "intent_ranking": remote.get("intent_ranking") or [dict(remote["intent"])],
            "category": local["category"],
            "category_ranking": local["category_ranking"],
            "backend": "rasa",
        })
