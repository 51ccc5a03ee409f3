"""The Dockerfile, .dockerignore and docker-compose.yml, checked without a Docker engine: what
they say, and that the files they put in the image are enough to run the bot."""

import fnmatch
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from bot.settings import Settings

ROOT = Path(__file__).resolve().parents[2]
SECRETS = ("BOT_TOKEN", "API_TOKENS", "WEBHOOK_SECRET")
DEFAULT = re.compile(r"\$\{(\w+):-([^}]*)\}")


def instructions() -> list[tuple[str, str]]:
    """The Dockerfile as (INSTRUCTION, arguments), continuation lines joined."""
    text = (ROOT / "Dockerfile").read_text().replace("\\\n", " ")
    lines = [line.strip() for line in text.splitlines()]
    return [
        (line.split(None, 1)[0].upper(), line.split(None, 1)[1])
        for line in lines
        if line and not line.startswith("#")
    ]


def final_stage() -> list[tuple[str, str]]:
    steps = instructions()
    last_from = max(i for i, (name, _) in enumerate(steps) if name == "FROM")
    return steps[last_from:]


def compose() -> dict[str, Any]:
    return dict(yaml.safe_load((ROOT / "docker-compose.yml").read_text()))


def test_the_image_is_built_in_stages_on_a_slim_python():
    bases = [args.split()[0] for name, args in instructions() if name == "FROM"]
    assert len(bases) >= 2
    assert all(re.fullmatch(r"python:3\.1[1-9]-slim", base) for base in bases), bases


def test_dependencies_come_from_the_hash_pinned_lock_file():
    installs = [args for name, args in instructions() if name == "RUN" and "pip install" in args]
    assert installs, "no pip install"
    assert all("--require-hashes" in line and "requirements.lock" in line for line in installs)


def test_it_runs_the_bot_as_a_user_without_privileges():
    stage = final_stage()
    users = [args.strip() for name, args in stage if name == "USER"]
    assert users, "no USER: the bot would run as root"
    assert users[-1] not in ("root", "0")
    names = [name for name, _ in stage]
    assert names.index("USER") < names.index("CMD")
    assert dict(stage)["CMD"] == '["python", "-m", "bot"]'


def test_the_healthcheck_asks_healthz_on_the_port_the_bot_listens_on():
    stage = dict(final_stage())
    assert "/healthz" in stage["HEALTHCHECK"]
    assert "WEB_PORT" in stage["HEALTHCHECK"]
    assert "WEB_HOST=0.0.0.0" in stage["ENV"]  # reachable from outside the container
    assert "WEB_PORT=" in stage["ENV"]  # so the web server, and its /healthz, are on


def test_no_secret_is_baked_into_the_image():
    for name, args in instructions():
        if name in ("ENV", "ARG", "LABEL"):
            assert not any(secret in args for secret in SECRETS), args
        if name in ("COPY", "ADD"):
            assert ".env" not in args.split(), args


def test_the_build_context_leaves_out_environments_secrets_databases_and_caches():
    ignored = ignore_patterns()
    for path in (
        ".venv/bin/python",
        ".env",
        "data/dispatch.sqlite3",
        "dispatch.sqlite3",
        "dispatch.sqlite3-wal",
        "db/dispatch.sqlite3",
        "bot/__pycache__/app.cpython-312.pyc",
        "bot/app.pyc",
        ".pytest_cache/v",
        ".mypy_cache/x",
        ".ruff_cache/x",
        ".git/HEAD",
    ):
        assert is_ignored(path, ignored), path
    for path in ("bot/__main__.py", "requirements.lock", "alembic.ini", "db/migrations/env.py"):
        assert not is_ignored(path, ignored), path


def test_what_the_image_holds_is_enough_to_migrate_and_start(tmp_path: Path):
    """The files the Dockerfile copies (as .dockerignore lets them through) make a bot that
    migrates a database: nothing it needs was left out of the image."""
    app = tmp_path / "app"
    ignored = ignore_patterns()
    for name, args in final_stage():
        if name == "COPY" and not args.startswith("--from"):
            *sources, _ = args.split()
            for source in sources:
                copy_into(app, source, ignored)
    environment = {
        "PATH": os.environ["PATH"],
        "BOT_TOKEN": "123456:image-check",
        "DATABASE_URL": f"sqlite+aiosqlite:///{tmp_path / 'image.sqlite3'}",
    }
    done = subprocess.run(
        [sys.executable, "-m", "bot", "migrate"],
        cwd=app,
        env=environment,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert (tmp_path / "image.sqlite3").exists()


def test_compose_runs_the_bot_on_postgresql_and_redis_with_healthchecks():
    services = compose()["services"]
    assert set(services) == {"bot", "postgres", "redis"}
    assert services["bot"]["build"] == "."
    for name in ("postgres", "redis"):
        assert services[name]["healthcheck"]["test"], name
        assert services["bot"]["depends_on"][name] == {"condition": "service_healthy"}
    # The bot's own healthcheck is the image's HEALTHCHECK; Compose must not turn it off.
    assert "healthcheck" not in services["bot"]


def test_compose_keeps_data_in_named_volumes():
    spec = compose()
    named = set(spec["volumes"])
    for name in ("postgres", "redis"):
        (volume,) = spec["services"][name]["volumes"]
        assert volume.split(":")[0] in named, volume


def test_compose_takes_settings_from_env_and_bakes_in_no_secret():
    bot = compose()["services"]["bot"]
    assert bot["env_file"] == ".env"
    assert not set(bot["environment"]) & set(SECRETS)
    assert not any(re.search(r"\d{6,}:[\w-]{20,}", str(v)) for v in bot["environment"].values())


def test_a_dot_env_with_only_the_token_makes_a_bot_on_postgresql(monkeypatch: pytest.MonkeyPatch):
    """What the container's environment will be: Compose's settings over a .env that holds
    only BOT_TOKEN, with ${VAR:-default} as Compose fills it in."""
    for name in list(os.environ):
        monkeypatch.delenv(name)
    environment = {
        name: DEFAULT.sub(lambda m: os.environ.get(m[1], m[2]), str(value))
        for name, value in compose()["services"]["bot"]["environment"].items()
    }
    settings = Settings(
        _env_file=None,  # type: ignore[call-arg]
        **{name.lower(): value for name, value in environment.items()},
        bot_token="123456:ABCdefGHIjklMNOpqrSTUvwxYZ0123456789",
    )
    assert settings.database_url.startswith("postgresql+asyncpg://dispatch:")
    assert "@postgres:5432/dispatch" in settings.database_url
    assert settings.redis_url == "redis://redis:6379/0"
    assert (settings.web_host, settings.web_on) == ("0.0.0.0", True)


def ignore_patterns() -> list[str]:
    lines = (ROOT / ".dockerignore").read_text().splitlines()
    return [line.strip() for line in lines if line.strip() and not line.startswith("#")]


def is_ignored(path: str, patterns: list[str]) -> bool:
    """Docker's rule, as far as these patterns need: anchored at the context's root, `**/` at
    any depth, matching the path or a folder above it; the last match wins (`!` lets back in)."""
    parts = path.split("/")
    prefixes = ["/".join(parts[: n + 1]) for n in range(len(parts))]
    ignored = False
    for pattern in patterns:
        if any(_matches(prefix, pattern.lstrip("!")) for prefix in prefixes):
            ignored = not pattern.startswith("!")
    return ignored


def _matches(path: str, pattern: str) -> bool:
    parts = path.split("/")
    if pattern.startswith("**/"):
        return any(_matches("/".join(parts[n:]), pattern[3:]) for n in range(len(parts)))
    return len(parts) == pattern.count("/") + 1 and fnmatch.fnmatchcase(path, pattern)


def copy_into(app: Path, source: str, ignored: list[str]) -> None:
    origin = ROOT / source
    files = [origin] if origin.is_file() else [p for p in origin.rglob("*") if p.is_file()]
    for file in files:
        relative = file.relative_to(ROOT).as_posix()
        if not is_ignored(relative, ignored):
            target = app / relative
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(file, target)
