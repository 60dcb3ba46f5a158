"""Staff sign-in pieces: argon2 password hashes, API tokens (only their hash is stored), TOTP, and
the account use cases the command line and the console share."""
from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from enum import Enum

import pyotp
from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

from bot.core.staff import AuditEntry, StaffAccount, StaffError, StaffRole
from bot.core.clock import Clock
from bot.core.ports import UnitOfWorkFactory
from bot.texts import default_texts

_hasher = PasswordHasher()
# verified when the username is unknown, so a wrong name costs the same time as a wrong password
_DUMMY_HASH = _hasher.hash(secrets.token_urlsafe(16))
MIN_PASSWORD_LENGTH = 8
TOKEN_PREFIX = "ztc_"


def hash_password(password: str) -> str:
    return _hasher.hash(password)


def verify_password(password_hash: str, password: str) -> bool:
    try:
        return _hasher.verify(password_hash, password)
    except (VerificationError, InvalidHashError):
        return False


def new_password() -> str:
    return secrets.token_urlsafe(9)  # 12 characters, typed once


def new_token() -> str:
    return TOKEN_PREFIX + secrets.token_urlsafe(32)


def token_hash(token: str) -> str:
    # a token is 256 random bits: a fast hash is enough, and it can be looked up by an index
    return hashlib.sha256(token.encode()).hexdigest()


def check_new_password(password: str) -> None:
    if len(password) < MIN_PASSWORD_LENGTH:
        raise StaffError("staff_password_short", length=MIN_PASSWORD_LENGTH)


def totp_ok(secret: str, code: str) -> bool:
    return bool(secret) and pyotp.TOTP(secret).verify(code.strip(), valid_window=1)


async def create_account(uow_factory: UnitOfWorkFactory, clock: Clock, *, username: str, role: str,
                         town: str = "", station: str = "", name: str = "", password: str | None = None,
                         totp: bool = False) -> tuple[StaffAccount, str]:
    """A new account; returns it with its password (generated when not given; to be changed at
    first login either way). Town and station must exist."""
    try:
        role = StaffRole(role)
    except ValueError:
        raise StaffError("staff_bad_role", role=role) from None
    password = password if password is not None else new_password()
    check_new_password(password)
    async with uow_factory() as uow:
        if station:
            found = await uow.stations.get(station)
            if found is None:
                raise StaffError("staff_unknown_station", station=station)
            town = town or found.town
        if role == StaffRole.TOWN and town not in {s.town for s in await uow.stations.list()}:
            raise StaffError("staff_unknown_town", town=town)
        account = StaffAccount(username=username, role=role, password_hash=hash_password(password), name=name,
                               town=town if role is not StaffRole.DISTRICT else "",
                               station=station if role is StaffRole.STATION else "",
                               totp_secret=pyotp.random_base32() if totp else "", created_at=clock.now())
        await uow.staff.add(account)
        await uow.audit.add(AuditEntry(clock.now(), "cli", "staff_created", f"staff:{username}",
                                       after=" ".join(filter(None, (default_texts().get(f"console_role_{role}"),
                                                                    account.town, account.station)))))
        await uow.commit()
    return account, password


async def issue_token(uow_factory: UnitOfWorkFactory, clock: Clock, username: str) -> str:
    """A new bearer token for the account (the previous one stops working)."""
    token = new_token()
    async with uow_factory() as uow:
        account = await uow.staff.get(username)
        if account is None:
            raise StaffError("staff_unknown", username=username)
        account.token_hash = token_hash(token)
        await uow.staff.save(account)
        await uow.audit.add(AuditEntry(clock.now(), "cli", "token_issued", f"staff:{username}"))
        await uow.commit()
    return token


class LoginResult(Enum):
    OK = "ok"
    WRONG = "wrong"  # user name or password: never said which
    WAIT = "wait"  # too many wrong passwords


@dataclass(frozen=True)
class Login:
    result: LoginResult
    account: StaffAccount | None = None


async def authenticate(uow_factory: UnitOfWorkFactory, clock: Clock, username: str, password: str) -> Login:
    now = clock.now()
    async with uow_factory() as uow:
        account = await uow.staff.get(username.strip())
        if account is None:
            verify_password(_DUMMY_HASH, password)
            return Login(LoginResult.WRONG)
        if account.is_locked(now):
            return Login(LoginResult.WAIT)
        if not verify_password(account.password_hash, password):
            account.login_failed(now)
            await uow.staff.save(account)
            await uow.commit()
            return Login(LoginResult.WAIT if account.is_locked(now) else LoginResult.WRONG)
        if account.failed_logins or account.locked_until:
            account.login_succeeded()
            await uow.staff.save(account)
            await uow.commit()
        return Login(LoginResult.OK, account)


async def change_password(uow_factory: UnitOfWorkFactory, clock: Clock, username: str, current: str,
                          new: str) -> None:
    async with uow_factory() as uow:
        account = await uow.staff.get(username)
        if account is None or not verify_password(account.password_hash, current):
            raise StaffError("console_password_current_wrong")
        check_new_password(new)
        if new == current:
            raise StaffError("console_password_same")
        account.password_hash = hash_password(new)
        account.must_change_password = False
        await uow.staff.save(account)
        await uow.audit.add(AuditEntry(clock.now(), username, "password_changed", f"staff:{username}"))
        await uow.commit()
