"""Staff accounts: who sees what, wrong passwords, hashes and tokens."""
from __future__ import annotations

from datetime import datetime, timedelta

import pyotp
import pytest

from bot.console import auth
from bot.core.staff import MAX_FAILED_LOGINS, Scope, StaffAccount, StaffError, StaffRole
from bot.core.people import Station, StationKind
from storage.memory import MemoryUnitOfWorkFactory

NOW = datetime(2026, 12, 1, 10, 0)
SZ1 = Station("SZ-01", "东方", StationKind.STATION, "盛泽镇")
SZ2 = Station("SZ-02", "南麻", StationKind.STATION, "盛泽镇")
QD1 = Station("QD-01", "开弦弓", StationKind.STATION, "七都镇")


class Clock:
    def __init__(self) -> None:
        self.at = NOW

    def now(self) -> datetime:
        return self.at


def test_scope_by_role() -> None:
    district, town, station = Scope(StaffRole.DISTRICT), Scope(StaffRole.TOWN, "盛泽镇"), \
        Scope(StaffRole.STATION, "盛泽镇", "SZ-02")
    everything = [SZ1, SZ2, QD1]
    assert district.station_codes(everything) is None
    assert town.station_codes(everything) == ["SZ-01", "SZ-02"]
    assert station.station_codes(everything) == ["SZ-02"]
    assert district.sees_station(None) and not town.sees_station(None)  # the district queue
    assert not town.sees_station(QD1) and not station.sees_station(SZ1)
    assert town.sees_town("盛泽镇") and not town.sees_town("七都镇") and not station.sees_town("盛泽镇")


def test_accounts_need_their_town_or_station() -> None:
    with pytest.raises(StaffError) as error:
        StaffAccount("a", StaffRole.TOWN, "h")
    assert error.value.key == "staff_needs_town"
    with pytest.raises(StaffError):
        StaffAccount("a", StaffRole.STATION, "h", town="盛泽镇")
    with pytest.raises(StaffError):
        StaffAccount("a", StaffRole.TOWN, "h", town="盛泽镇", totp_secret="ABC")


def test_five_wrong_passwords_make_the_account_wait() -> None:
    account = StaffAccount("a", StaffRole.DISTRICT, "h")
    for _ in range(MAX_FAILED_LOGINS - 1):
        account.login_failed(NOW)
    assert not account.is_locked(NOW)
    account.login_failed(NOW)
    assert account.is_locked(NOW + timedelta(minutes=4))
    assert not account.is_locked(NOW + timedelta(minutes=6))


def test_hashes_and_tokens() -> None:
    hashed = auth.hash_password("正确的密码123")
    assert hashed.startswith("$argon2") and "正确的密码123" not in hashed
    assert auth.verify_password(hashed, "正确的密码123")
    assert not auth.verify_password(hashed, "错误") and not auth.verify_password("not-a-hash", "x")
    token = auth.new_token()
    assert token != auth.new_token() and len(auth.token_hash(token)) == 64 and token not in auth.token_hash(token)
    secret = pyotp.random_base32()
    assert auth.totp_ok(secret, pyotp.TOTP(secret).now())
    assert not auth.totp_ok(secret, "000000x") and not auth.totp_ok("", "123456")


async def _factory_with_stations() -> MemoryUnitOfWorkFactory:
    factory = MemoryUnitOfWorkFactory()
    async with factory() as uow:
        for s in (SZ1, SZ2, QD1):
            await uow.stations.upsert(s)
        await uow.commit()
    return factory


async def test_create_login_lockout_and_password_change() -> None:
    factory, clock = await _factory_with_stations(), Clock()
    account, password = await auth.create_account(factory, clock, username="wang", role="station", station="SZ-02")
    assert account.town == "盛泽镇" and account.must_change_password and len(password) >= 8
    with pytest.raises(StaffError) as error:
        await auth.create_account(factory, clock, username="wang", role="district")
    assert error.value.key == "staff_exists"
    for bad in ({"role": "town", "town": "火星镇"}, {"role": "station", "station": "NOPE"}, {"role": "boss"}):
        with pytest.raises(StaffError):
            await auth.create_account(factory, clock, username="x", **bad)

    ok = await auth.authenticate(factory, clock, "wang", password)
    assert ok.result is auth.LoginResult.OK and ok.account and ok.account.username == "wang"
    assert (await auth.authenticate(factory, clock, "nobody", password)).result is auth.LoginResult.WRONG
    results = [(await auth.authenticate(factory, clock, "wang", "wrong")).result for _ in range(MAX_FAILED_LOGINS)]
    assert results == [auth.LoginResult.WRONG] * 4 + [auth.LoginResult.WAIT]
    # while waiting, even the right password does not get in
    assert (await auth.authenticate(factory, clock, "wang", password)).result is auth.LoginResult.WAIT
    clock.at += timedelta(minutes=6)
    assert (await auth.authenticate(factory, clock, "wang", password)).result is auth.LoginResult.OK

    with pytest.raises(StaffError):
        await auth.change_password(factory, clock, "wang", password, "short")
    await auth.change_password(factory, clock, "wang", password, "新的密码很长很长")
    async with factory() as uow:
        stored = await uow.staff.get("wang")
        log = await uow.audit.page(0, 10)
    assert stored and not stored.must_change_password
    assert [e.action for e in log.entries] == ["password_changed", "staff_created"]
