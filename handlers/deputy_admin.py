"""Staff looking after deputies' WeChat accounts (the console's 解绑): unbinding an account, told
to the deputy and written to the audit log in the same transaction."""
from __future__ import annotations

import logging

from bot.core.errors import DomainError
from bot.core.outbound import OutboxMessage
from bot.core.privacy import mask_openid
from bot.core.staff import AuditEntry
from handlers.services import Services

log = logging.getLogger(__name__)


async def unbind_deputy(services: Services, deputy_code: str, actor: str) -> bool:
    """Forget the WeChat account bound to the deputy; False when none was bound. The deputy gets a
    message on that account (sent while WeChat lets us reach them, like every push); they may bind
    again with a new code."""
    now = services.clock.now()
    async with services.uow() as uow:
        deputy = await uow.deputies.get(deputy_code)
        if deputy is None:
            raise DomainError("deputy_unknown", code=deputy_code)
        openid = await uow.deputies.unbind(deputy_code)
        if openid is None:
            return False
        station = await uow.stations.get(deputy.station_code)
        await uow.outbox.add(OutboxMessage(recipient_openid=openid, created_at=now, text=services.texts.get(
            "deputy_unbound_notice", name=deputy.name, station=station.name if station else deputy.station_code)))
        await uow.audit.add(AuditEntry(now, actor, "deputy_unbound", f"deputy:{deputy_code}",
                                       before=mask_openid(openid)))
        await uow.commit()
    log.info("deputy %s unbound from %s by %s", deputy_code, mask_openid(openid), actor)
    return True
