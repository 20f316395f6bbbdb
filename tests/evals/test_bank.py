"""Loading scenario banks: each kind of mistake is a ConfigError naming file, scenario and field."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from proctor.errors import ConfigError
from proctor.evals.bank import load_bank, write_schema

GOOD = """\
suite: support
scenarios:
  - id: {id}
    labels: [order_status]
    request: "Where is my order A-1001?"
    expect:
      state: completed
"""


def write(folder: Path, name: str, text: str) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / name
    path.write_text(text, encoding="utf-8")
    return path


def test_a_folder_loads_in_file_order_with_a_digest(tmp_path: Path) -> None:
    write(tmp_path, "b.yaml", GOOD.format(id="second"))
    write(tmp_path, "a.yaml", GOOD.format(id="first"))
    write(tmp_path, "notes.txt", "not a bank file")
    bank = load_bank(tmp_path)
    assert bank.suite == "support"
    assert [s.id for s in bank.scenarios] == ["first", "second"]
    assert [f.name for f in bank.files] == ["a.yaml", "b.yaml"]
    assert len(bank.digest) == 64
    assert load_bank(tmp_path).digest == bank.digest
    write(tmp_path, "b.yaml", GOOD.format(id="changed"))
    assert load_bank(tmp_path).digest != bank.digest


def test_one_file_loads(tmp_path: Path) -> None:
    path = write(tmp_path, "one.yaml", GOOD.format(id="only"))
    assert [s.id for s in load_bank(path).scenarios] == ["only"]


def test_bad_yaml_names_the_file_and_line(tmp_path: Path) -> None:
    path = write(tmp_path, "broken.yaml", "suite: support\nscenarios:\n  - id: [unclosed\n")
    with pytest.raises(ConfigError) as caught:
        load_bank(path)
    message = str(caught.value)
    assert "broken.yaml" in message
    assert "line " in message
    assert "not valid YAML" in message


def test_an_unknown_field_names_file_scenario_and_field(tmp_path: Path) -> None:
    text = GOOD.format(id="typo").replace("    expect:", "    expcet: {}\n    expect:")
    write(tmp_path, "typo.yaml", text)
    with pytest.raises(ConfigError) as caught:
        load_bank(tmp_path)
    message = str(caught.value)
    assert "typo.yaml" in message
    assert "scenario 'typo'" in message
    assert "field expcet" in message
    assert "Extra inputs are not permitted" in message


def test_a_wrong_type_names_the_nested_field_and_what_was_expected(tmp_path: Path) -> None:
    text = GOOD.format(id="wrong").replace(
        "      state: completed", "      state: completed\n      max_steps: many"
    )
    write(tmp_path, "wrong.yaml", text)
    with pytest.raises(ConfigError) as caught:
        load_bank(tmp_path)
    message = str(caught.value)
    assert "wrong.yaml" in message
    assert "scenario 'wrong'" in message
    assert "field expect.max_steps" in message
    assert "integer" in message


def test_a_scenario_without_an_id_is_named_by_its_index(tmp_path: Path) -> None:
    text = GOOD.format(id="ok") + GOOD.format(id="x").split("scenarios:\n")[1].replace(
        "  - id: x\n    labels", "  - labels"
    )
    write(tmp_path, "noid.yaml", text)
    with pytest.raises(ConfigError, match=r"noid\.yaml: scenario #1, field id: Field required"):
        load_bank(tmp_path)


def test_a_missing_expect_is_an_error(tmp_path: Path) -> None:
    text = GOOD.format(id="vague").split("    expect:")[0]
    write(tmp_path, "vague.yaml", text)
    with pytest.raises(ConfigError) as caught:
        load_bank(tmp_path)
    assert "scenario 'vague', field expect: Field required" in str(caught.value)


def test_duplicate_ids_across_files_are_an_error(tmp_path: Path) -> None:
    write(tmp_path, "a.yaml", GOOD.format(id="same"))
    write(tmp_path, "b.yaml", GOOD.format(id="same"))
    with pytest.raises(ConfigError) as caught:
        load_bank(tmp_path)
    message = str(caught.value)
    assert "b.yaml" in message
    assert "a.yaml" in message
    assert "scenario 'same', field id: duplicate id" in message


def test_an_empty_folder_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"no \*\.yaml scenario files"):
        load_bank(tmp_path)


def test_the_schema_is_written(tmp_path: Path) -> None:
    write_schema(tmp_path / "scenario.schema.json")
    schema = json.loads((tmp_path / "scenario.schema.json").read_text())
    assert "scenarios" in schema["properties"]
    assert "Scenario" in schema["$defs"]
