"""`zhitongche staff add/token` as staff run them: the secret alone on the last line, only hashes stored."""
from __future__ import annotations

import asyncio
import sqlite3
from pathlib import Path

from test_cli import SCRIPT, env_for, run, write

STATIONS = "code,name,kind,town,address,specialties,places\nSZ-01,东方社区联络站,站,盛泽镇,,,\n"


async def run_stdin(tmp_path: Path, stdin: str, *args: str) -> tuple[int, str]:
    proc = await asyncio.create_subprocess_exec(
        SCRIPT, *args, env=env_for(tmp_path), cwd=tmp_path, stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT)
    out, _ = await proc.communicate(stdin.encode())
    return proc.returncode, out.decode()


async def test_staff_add_and_token(tmp_path: Path) -> None:
    await run(tmp_path, "import", "stations", str(write(tmp_path, "stations.csv", STATIONS)))
    code, out = await run(tmp_path, "staff", "add", "wang", "--role", "station", "--station", "SZ-01",
                          "--name", "王芳")
    assert code == 0, out
    password = out.strip().splitlines()[-1]
    assert len(password) >= 8 and " " not in password
    code, out = await run(tmp_path, "staff", "add", "wang", "--role", "district")
    assert code == 1 and "已经有人用了" in out
    code, out = await run(tmp_path, "staff", "add", "li", "--role", "town", "--town", "火星镇")
    assert code == 1 and "火星镇" in out
    code, out = await run_stdin(tmp_path, "我自己定的密码123\n", "staff", "add", "zhao", "--role", "district",
                                "--password-stdin")
    assert code == 0 and "我自己定的密码123" not in out
    code, out = await run(tmp_path, "staff", "token", "wang")
    token = out.strip().splitlines()[-1]
    assert code == 0 and token.startswith("ztc_")
    assert (await run(tmp_path, "staff", "token", "nobody"))[0] == 1

    db = sqlite3.connect(tmp_path / "cli.db")
    rows = db.execute("SELECT username, password_hash, token_hash, must_change_password, town FROM staff "
                      "ORDER BY username").fetchall()
    db.close()
    stored = {r[0]: r for r in rows}
    assert stored["wang"][1].startswith("$argon2") and password not in stored["wang"][1]
    assert stored["wang"][2] and token not in stored["wang"][2]
    assert stored["wang"][3] == 1 and stored["wang"][4] == "盛泽镇"

    from bot.console.auth import verify_password

    assert verify_password(stored["zhao"][1], "我自己定的密码123")
