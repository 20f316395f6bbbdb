"""``--app``: an application written outside proctor plugs in whole, through the commands.

The app below lives in a temporary folder, importable from there only: one tool, a
Cedar bundle written beside it, a playbook for the simulated model and a suite of one
scenario. ``proctor demo``, ``proctor eval run`` and ``proctor run`` each work on it.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

NOTES_APP = '''
import json
from pathlib import Path
from proctor import App, Effect, tool
from proctor.evals.suite import EvalSuite, RunDefaults, rubric
from proctor.models.playbook import Call, Turn, answered, latest_request

HERE = Path(__file__).parent
BUNDLE = HERE / "notes_bundle"
BUNDLE.mkdir(exist_ok=True)
(BUNDLE / "notes.cedar").write_text(
    '@id("may-note")\\npermit (principal in Role::"note_taker", action == Action::"add_note", '
    "resource);\\n"
)
(BUNDLE / "proctor.yaml").write_text("label: notes\\n")


class Notes:
    def __init__(self, path):
        self.path = path
        path.parent.mkdir(parents=True, exist_ok=True)

        @tool(effect=Effect.WRITE)
        async def add_note(text: str) -> dict:
            """Write a note down."""
            notes = [*self.rows("notes"), {"text": text}]
            self.path.write_text(json.dumps(notes))
            return {"saved": len(notes)}

        self.tools = [add_note]

    def rows(self, table):
        return json.loads(self.path.read_text()) if self.path.exists() else []

    def sensitive_values(self):
        return []


class Playbook:
    id_arguments = ()
    amount_arguments = ()

    def turn(self, messages):
        if any(a.tool == "add_note" and not a.is_error for a in answered(messages)):
            return Turn(answer="Noted.")
        return Turn(calls=(Call("add_note", {"text": latest_request(messages)}),))


def one_note(ctx):
    return None if len(ctx.world.rows("notes")) == 1 else "expected exactly one note"


suite = EvalSuite(
    name="notes",
    scenarios=HERE / "notes_scenarios",
    world=lambda path, scenario: Notes(path),
    run=RunDefaults(role="note_taker", workflow="notes"),
    tables=frozenset({"notes"}),
    rubrics=(rubric(one_note),),
)
app = App(
    tools=Notes(HERE / "notes.json").tools,
    policy=BUNDLE,
    model="simulated",
    system_prompt="You take notes.",
    playbook=Playbook(),
    suite=suite,
)
'''

BANK = """\
scenarios:
  - id: water-the-plants
    labels: [note]
    request: "Note: water the plants on Friday"
    expect:
      state: completed
      must: [{tool: add_note}]
      world: [{table: notes, count: 1}]
      rubrics: [one_note]
"""

APP = "notes_app:app"


@pytest.fixture
def outside(tmp_path: Path) -> Path:
    """A folder holding the app and its bank, as a user's project would."""
    (tmp_path / "notes_app.py").write_text(NOTES_APP)
    (tmp_path / "notes_scenarios").mkdir()
    (tmp_path / "notes_scenarios" / "notes.yaml").write_text(BANK)
    return tmp_path


def proctor(folder: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("PROCTOR_", "OTEL_")) and k != "PYTHONPATH"
    }
    env |= {
        "PYTHONPATH": str(folder),
        "PROCTOR_HOME": str(folder / "home"),
        "COLUMNS": "250",
        "NO_COLOR": "1",
    }
    return subprocess.run(
        [sys.executable, "-m", "proctor", *args],
        cwd=folder,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )


def test_demo_runs_the_apps_own_bank(outside: Path) -> None:
    done = proctor(outside, "demo", "--app", APP)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "Scenario bank: 1 scenarios" in done.stdout
    report = json.loads((outside / "home" / "reports" / "latest.json").read_text())
    assert report["suite"] == "notes"
    [result] = report["results"]
    assert (result["scenario_id"], result["passed"]) == ("water-the-plants", True)
    assert result["failures"] == []


def test_eval_run_runs_a_bank_on_the_app(outside: Path) -> None:
    out = outside / "out"
    done = proctor(outside, "eval", "run", "notes_scenarios", "--out", str(out), "--app", APP)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "1 runs: success 100.0%" in done.stdout
    report = json.loads((out / "report.json").read_text())
    assert report["summary"]["incidents"]["unauthorized_executed"] == 0
    assert report["manifest"]["policy_version"].startswith("notes@")


def test_run_runs_one_request_on_the_app(outside: Path) -> None:
    done = proctor(outside, "run", "--app", APP, "--json", "Note: call the plumber")
    assert done.returncode == 0, done.stdout + done.stderr
    summary = json.loads(done.stdout)
    assert summary["state"] == "completed"
    assert [(s["tool"], s["decision"]) for s in summary["steps"]] == [("add_note", "allow")]
    assert summary["answer"] == "Noted."
    notes = json.loads((outside / "notes.json").read_text())
    assert notes == [{"text": "Note: call the plumber"}]


def test_an_app_without_a_suite_says_so(outside: Path) -> None:
    (outside / "bare_app.py").write_text(
        "from notes_app import BUNDLE, Notes, HERE\n"
        "from proctor import App\n"
        "app = App(tools=Notes(HERE / 'bare.json').tools, policy=BUNDLE)\n"
    )
    done = proctor(outside, "demo", "--app", "bare_app:app")
    assert done.returncode == 2, done.stdout + done.stderr
    assert "this app has no eval suite" in done.stderr
