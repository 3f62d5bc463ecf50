"""Documentation keeps up with the code: every command and setting is documented."""

from pathlib import Path
from typing import Any

import typer

from parcours.cli import app
from parcours.core.settings import ENV_PREFIX, Settings

ROOT = Path(__file__).resolve().parents[1]


def _documentation() -> str:
    pages = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
    return "\n".join(page.read_text(encoding="utf-8") for page in pages)


def _command_paths(command: Any, context: Any, prefix: str) -> list[str]:
    """Every command path below `command`, through the groups' own listing (Typer builds
    its groups on a bundled click, and the root loads its groups lazily)."""
    paths = [prefix]
    if hasattr(command, "list_commands"):
        for name in command.list_commands(context):
            sub = command.get_command(context, name)
            child = type(context)(sub, parent=context, info_name=name)
            paths += _command_paths(sub, child, f"{prefix} {name}")
    return paths


def test_every_cli_command_is_documented() -> None:
    docs = _documentation()
    root = typer.main.get_command(app)
    commands = _command_paths(root, root.context_class(root, info_name="parcours"), "parcours")
    assert len(commands) > 80  # the walk reaches every group's commands
    missing = [path for path in commands if f"`{path}" not in docs]
    assert missing == [], f"undocumented commands: {missing}"


def test_every_setting_is_documented_in_the_configuration_table() -> None:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    missing = [
        ENV_PREFIX + name.upper()
        for name in Settings.model_fields
        if f"| `{ENV_PREFIX}{name.upper()}` |" not in readme
    ]
    assert missing == [], f"settings missing from the README table: {missing}"


def test_the_quickstart_has_exactly_the_two_commands_ci_relies_on() -> None:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    quickstart = readme.split("## Quickstart", 1)[1].split("##", 1)[0]
    block = quickstart.split("```bash", 1)[1].split("```", 1)[0]
    commands = [line.split("#")[0].strip() for line in block.strip().splitlines()]
    assert commands == ["./dev demo", "./dev test"]
    assert "./dev test" in (ROOT / ".ci" / "run").read_text()
