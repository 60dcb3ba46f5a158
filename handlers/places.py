"""The place names the NLU recognises are those of the stations actually imported (any district),
not only the ones it was built with: read from the stations table at start and every minute
after (an import by the command line is another process), handed over through the NLU port."""
from __future__ import annotations

from handlers.services import Services


async def learn_station_places(services: Services) -> None:
    async with services.uow() as uow:
        stations = await uow.stations.list()
    await services.nlu.learn_places(stations)
