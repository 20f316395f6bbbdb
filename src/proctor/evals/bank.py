"""Loading a scenario bank: YAML files validated strictly, errors naming file, scenario, field."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

from proctor.errors import ConfigError
from proctor.evals.scenario import BankFile, Scenario, scenario_json_schema

__all__ = ["Bank", "load_bank", "write_schema"]


@dataclass(frozen=True)
class Bank:
    """The scenarios of one suite, in file order then the order within each file."""

    suite: str | None
    """The suite its files name, if they name one (for readers: the app decides)."""
    scenarios: tuple[Scenario, ...]
    files: tuple[Path, ...]
    digest: str
    """sha256 over the files' bytes, in order: what the report's ``bank_hash`` names."""

    def only(self, ids: Sequence[str]) -> Bank:
        """The same bank with just these scenarios (for a focused run)."""
        wanted = set(ids)
        return Bank(
            self.suite,
            tuple(s for s in self.scenarios if s.id in wanted),
            self.files,
            self.digest,
        )


def _files(path: Path) -> list[Path]:
    if path.is_dir():
        found = sorted(p for p in path.iterdir() if p.suffix in (".yaml", ".yml") and p.is_file())
        if not found:
            raise ConfigError(f"{path}: no *.yaml scenario files in this folder")
        return found
    if path.is_file():
        return [path]
    raise ConfigError(f"{path}: no such scenario file or folder")


def _where(raw: Any, loc: tuple[int | str, ...]) -> tuple[str, str]:
    """The scenario a pydantic error location points into, and the field path within it."""
    if len(loc) >= 2 and loc[0] == "scenarios" and isinstance(loc[1], int):
        index = loc[1]
        scenario = f"scenario #{index}"
        items = raw.get("scenarios") if isinstance(raw, dict) else None
        if isinstance(items, list) and index < len(items) and isinstance(items[index], dict):
            sid = items[index].get("id")
            if isinstance(sid, str):
                scenario = f"scenario {sid!r}"
        return scenario, ".".join(str(p) for p in loc[2:]) or "(the scenario)"
    return "the file", ".".join(str(p) for p in loc) or "(the file)"


def _parse(path: Path, data: bytes) -> BankFile:
    try:
        raw = yaml.safe_load(data.decode("utf-8"))
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        line = f" line {mark.line + 1}" if mark is not None else ""
        problem = getattr(exc, "problem", None) or str(exc)
        raise ConfigError(f"{path}:{line}: not valid YAML: {problem}") from None
    except UnicodeDecodeError:
        raise ConfigError(f"{path}: not UTF-8 text") from None
    if not isinstance(raw, dict):
        raise ConfigError(f"{path}: expected a mapping with 'suite' and 'scenarios'")
    try:
        return BankFile.model_validate(raw)
    except ValidationError as exc:
        problems = []
        for error in exc.errors(include_url=False):
            scenario, field = _where(raw, tuple(error["loc"]))
            problems.append(f"{scenario}, field {field}: {error['msg']}")
        raise ConfigError(f"{path}: " + "; ".join(problems)) from None


def load_bank(path: Path | str) -> Bank:
    """The bank in ``path``: a folder of ``*.yaml`` files (sorted by name) or one file."""
    files = _files(Path(path))
    digest = hashlib.sha256()
    scenarios: list[Scenario] = []
    seen: dict[str, Path] = {}
    suites: set[str | None] = set()
    for file in files:
        data = file.read_bytes()
        digest.update(data)
        bank_file = _parse(file, data)
        suites.add(bank_file.suite)
        for scenario in bank_file.scenarios:
            if scenario.id in seen:
                raise ConfigError(
                    f"{file}: scenario {scenario.id!r}, field id: duplicate id, "
                    f"already used in {seen[scenario.id]}; ids must be unique across the bank"
                )
            seen[scenario.id] = file
            scenarios.append(scenario)
    named = {s for s in suites if s is not None}
    if len(named) > 1:
        raise ConfigError(f"{path}: files name different suites ({', '.join(sorted(named))})")
    suite = named.pop() if named else None
    return Bank(suite, tuple(scenarios), tuple(files), digest.hexdigest())


def write_schema(path: Path | str) -> None:
    """Write the bank format's JSON Schema to ``path``."""
    text = json.dumps(scenario_json_schema(), indent=2, sort_keys=True) + "\n"
    Path(path).write_text(text, encoding="utf-8")
