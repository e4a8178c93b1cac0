"""Import rules from docs/architecture.md, checked on the source so they cannot drift.

- Domain packages never import a web framework or the CLI: they raise domain errors instead.
- Packages import each other only through their public surface (`threadline.<package>`), except the
  storage tables (`threadline.storage.models`), which are the shared schema.
"""

from __future__ import annotations

import ast
from pathlib import Path

SRC = Path(__file__).resolve().parents[1] / "src" / "threadline"
DOMAINS = {
    "identity",
    "profiles",
    "ingest",
    "accounts",
    "demo",
    "storage",
    "privacy",
    "resolution",
    "jobs",
    "messaging",
    "analytics",
    "service",
    "loyalty",
    "segments",
    "sales",
    "journeys",
    "destinations",
}
INTERFACES = {"api", "web", "cli"}
FRAMEWORKS = ("fastapi", "starlette", "uvicorn", "typer", "rich", "jinja2")
SHARED = {"threadline.storage.models", "threadline.storage.engine", "threadline.storage.migrate"}


def imports_of(path: Path) -> list[str]:
    tree = ast.parse(path.read_text())
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found += [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.append(node.module)
    return found


def package_of(path: Path) -> str:
    return path.relative_to(SRC).parts[0] if len(path.relative_to(SRC).parts) > 1 else ""


def test_domain_packages_do_not_import_frameworks() -> None:
    offenders = [
        f"{path.relative_to(SRC)} imports {name}"
        for path in SRC.rglob("*.py")
        if package_of(path) in DOMAINS
        for name in imports_of(path)
        if name.split(".")[0] in FRAMEWORKS
        and not (package_of(path) == "demo" and name.startswith("rich"))
        # Messaging renders customers' emails with Jinja2's sandbox: a template language for content,
        # not the web layer's page rendering.
        and not (package_of(path) == "messaging" and name.startswith("jinja2"))
    ]
    assert offenders == []


def test_packages_use_each_others_public_surface() -> None:
    offenders = []
    for path in SRC.rglob("*.py"):
        own = package_of(path)
        for name in imports_of(path):
            parts = name.split(".")
            if parts[0] != "threadline" or len(parts) < 3 or name in SHARED:
                continue
            if parts[1] != own and parts[1] not in INTERFACES:
                offenders.append(f"{path.relative_to(SRC)} reaches into {name}")
    assert offenders == []


def test_domain_packages_do_not_import_interfaces() -> None:
    offenders = [
        f"{path.relative_to(SRC)} imports {name}"
        for path in SRC.rglob("*.py")
        if package_of(path) in DOMAINS
        for name in imports_of(path)
        if name.split(".")[:2] in (["threadline", i] for i in INTERFACES) or name == "threadline.app"
    ]
    assert offenders == []


def test_only_messaging_talks_to_a_mail_relay() -> None:
    """Every message leaves through threadline.messaging, whose send path checks consent (privacy's
    check_send) when a message is asked for and again when it goes: a module that opened its own SMTP
    connection could send without it. Journeys and service replies send through messaging too."""
    offenders = [
        f"{path.relative_to(SRC)} imports {name}"
        for path in SRC.rglob("*.py")
        if package_of(path) != "messaging"
        for name in imports_of(path)
        if name.split(".")[0] in {"smtplib", "aiosmtplib"}
    ]
    assert offenders == []
