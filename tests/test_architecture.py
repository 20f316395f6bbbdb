"""The shape of the code: dependencies point one way, no module grows past a size a
person reads in one sitting, and the public names and the error tree are what the
docs say they are."""

from __future__ import annotations

import ast
import inspect
import re
from pathlib import Path

import pytest

import proctor
from proctor import errors

SRC = Path(proctor.__file__).parent

# From the bottom up; a module may import its own layer and those below it, never above.
LAYERS: tuple[tuple[str, ...], ...] = (
    ("ids", "clock", "jsonvalue", "states", "errors", "settings", "sealing"),
    ("store",),
    ("audit", "redaction", "telemetry", "retention"),
    (
        "policy",
        "budgets",
        "models",
        "arguments",
        "argschema",
        "tool_types",
        "tools",
        "services",
        "runs",
        "approvals",
    ),
    ("runtime", "app", "agent", "evals", "evidence", "testing", "releases", "worker"),
    ("examples", "integrations", "gateway"),
    ("server", "cli", "bench", "__main__", ""),
)
MAX_LINES = 500


def _modules() -> dict[str, Path]:
    found = {}
    for path in SRC.rglob("*.py"):
        parts = path.relative_to(SRC).with_suffix("").parts
        if parts[-1] == "__init__":
            parts = parts[:-1]
        found[".".join(("proctor", *parts))] = path
    return found


MODULES = _modules()


def _imports(name: str, path: Path) -> set[str]:
    """Every proctor module ``name`` imports, wherever the import is written (functions and
    ``TYPE_CHECKING`` blocks included)."""
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parts = package.split(".")
                base = ".".join(parts[: len(parts) - node.level + 1] + ([base] if base else []))
            for alias in node.names:
                for candidate in (f"{base}.{alias.name}", base):
                    if candidate in MODULES:
                        found.add(candidate)
                        break
        elif isinstance(node, ast.Import):
            found |= {a.name for a in node.names if a.name in MODULES}
    return {d for d in found if d != name and not name.startswith(d + ".")}


GRAPH = {name: _imports(name, path) for name, path in MODULES.items()}


def _layer(module: str) -> int:
    top = module.split(".")[1] if "." in module else ""
    for index, layer in enumerate(LAYERS):
        if top in layer:
            return index
    raise AssertionError(f"{module} is in no layer of LAYERS: place it there")


def test_every_module_has_a_layer() -> None:
    for module in MODULES:
        _layer(module)


def test_no_module_imports_a_layer_above_its_own() -> None:
    upward = [
        f"{module} (layer {_layer(module)}) imports {dep} (layer {_layer(dep)})"
        for module, deps in GRAPH.items()
        for dep in sorted(deps)
        if _layer(dep) > _layer(module)
    ]
    assert upward == []


def test_no_import_cycle() -> None:
    # The package itself re-exports from everywhere: leave it out, as an import of it is
    # already an import of the top layer.
    graph = {m: {d for d in deps if d != "proctor"} for m, deps in GRAPH.items()}
    done: set[str] = set()
    cycles = []

    def visit(module: str, path: list[str]) -> None:
        if module in path:
            cycles.append(" -> ".join([*path[path.index(module) :], module]))
            return
        if module in done:
            return
        for dep in sorted(graph[module]):
            visit(dep, [*path, module])
        done.add(module)

    for module in sorted(graph):
        visit(module, [])
    assert cycles == []


def test_no_module_is_over_the_size_a_person_reads_at_once() -> None:
    long = {
        str(path.relative_to(SRC)): lines
        for path in SRC.rglob("*.py")
        if (lines := len(path.read_text().splitlines())) > MAX_LINES
    }
    assert long == {}


def test_the_run_handle_stays_small() -> None:
    assert len((SRC / "runs" / "run.py").read_text().splitlines()) < 300


def test_only_the_recorder_writes_runs_steps_and_their_audit_entries() -> None:
    writers = {
        str(path.relative_to(SRC))
        for path in SRC.rglob("*.py")
        if re.search(r"\b(runs|steps)\.(insert|update|delete)\(", path.read_text())
        or re.search(
            r"journal\.(insert_step|finish_step|move_run|move_step|close_step)\(", path.read_text()
        )
    }
    # The journal holds the statements; the recorder is the one that runs them. Retention
    # purges finished runs, which is no write of a run's life.
    assert writers <= {"runs/journal.py", "runs/recorder.py", "retention/purge.py"}


def test_the_public_names_are_pinned() -> None:
    assert sorted(proctor.__all__) == [
        "ActionDenied",
        "App",
        "ApprovalAlreadyDecided",
        "ApprovalError",
        "ApprovalExpired",
        "ApprovalNotFound",
        "ApprovalPending",
        "ApprovalQueue",
        "ApprovalRequest",
        "Approver",
        "BudgetCaps",
        "BudgetExceeded",
        "CallNotExecuted",
        "CallObserver",
        "CallOutcome",
        "CallStatus",
        "Clock",
        "ConfigError",
        "Credential",
        "Decision",
        "DecisionEffect",
        "Effect",
        "InvalidAction",
        "Mode",
        "NotAllowedToApprove",
        "PlannedCall",
        "PolicyBundle",
        "PolicyError",
        "ProctorError",
        "Proposal",
        "Reason",
        "Reconciliation",
        "ReplayMismatch",
        "ResourceRef",
        "Run",
        "RunBusy",
        "RunFailure",
        "RunNotFound",
        "RunSpec",
        "RunState",
        "RunStateError",
        "RunTerminated",
        "Runtime",
        "Settings",
        "StoreError",
        "SystemClock",
        "TooManyInvalidActions",
        "Tool",
        "ToolContext",
        "ToolDeclaration",
        "ToolDefinitionError",
        "ToolFailed",
        "TransientToolError",
        "Trust",
        "__version__",
        "load_app",
        "tool",
    ]
    for name in proctor.__all__:
        assert hasattr(proctor, name), name


def _drawn_tree(doc: str) -> dict[str, str]:
    """``{class: parent}`` as the module docstring draws the tree."""
    parents: dict[str, str] = {}
    stack: list[tuple[int, str]] = []
    for line in doc.splitlines():
        match = re.match(r"^(\s*)(?:[│ ]*[├└]── )?([A-Z][A-Za-z]+)\b", line)
        if not match or not line.startswith("    "):
            continue
        depth = len(line) - len(line.lstrip(" │├└─"))
        name = match.group(2)
        while stack and stack[-1][0] >= depth:
            stack.pop()
        if stack:
            parents[name] = stack[-1][1]
        stack.append((depth, name))
    return parents


def test_the_error_tree_is_drawn_as_it_is() -> None:
    drawn = _drawn_tree(errors.__doc__ or "")
    actual = {
        name: cls.__mro__[1].__name__
        for name, cls in vars(errors).items()
        if inspect.isclass(cls)
        and issubclass(cls, Exception)
        and cls.__module__ == errors.__name__
        and cls is not errors.ProctorError
    }
    assert drawn == actual


@pytest.mark.parametrize(
    ("family", "members"),
    [
        (errors.ConfigError, {"PolicyError", "ToolDefinitionError", "StoreError"}),
        (errors.RunFailure, {"BudgetExceeded", "TooManyInvalidActions", "ModelError"}),
        (errors.CallNotExecuted, {"ActionDenied", "ApprovalPending", "ToolFailed"}),
    ],
)
def test_three_families_code_that_runs_agents_catches(
    family: type[errors.ProctorError], members: set[str]
) -> None:
    assert {c.__name__ for c in family.__subclasses__()} == members


def test_a_run_failure_names_the_reason_its_run_ends_with() -> None:
    for failure in errors.RunFailure.__subclasses__():
        assert failure.reason is not errors.RunFailure.reason or failure is errors.ModelError


def test_a_tool_signal_is_not_an_error() -> None:
    assert not issubclass(errors.TransientToolError, errors.ProctorError)
