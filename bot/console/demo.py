"""`zhitongche demo`: a district staff account with a known password, so the console can be tried."""
from __future__ import annotations

from bot.console.auth import create_account, hash_password
from bot.core.clock import Clock
from bot.core.ports import UnitOfWorkFactory

DEMO_USERNAME = "demo"
DEMO_PASSWORD = "demo-12345"  # demo only: printed beside the simulator's address


async def ensure_demo_account(uow_factory: UnitOfWorkFactory, clock: Clock) -> tuple[str, str]:
    """The demo account, (re)set to the known password; returns (username, password)."""
    async with uow_factory() as uow:
        account = await uow.staff.get(DEMO_USERNAME)
    if account is None:
        await create_account(uow_factory, clock, username=DEMO_USERNAME, role="district", name="演示账号",
                             password=DEMO_PASSWORD)
    async with uow_factory() as uow:
        account = await uow.staff.get(DEMO_USERNAME)
        account.password_hash = hash_password(DEMO_PASSWORD)
        account.must_change_password = False
        account.login_succeeded()
        await uow.staff.save(account)
        await uow.commit()
    return DEMO_USERNAME, DEMO_PASSWORD
