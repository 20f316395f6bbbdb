"""A kit for testing an agent governed by proctor: scripted models, a clock you move,
and a runtime on a temporary store with a policy written inline.

::

    from proctor.testing import ScriptedModel, TestEnvironment, answer, call

    async def test_a_small_refund_runs() -> None:
        with TestEnvironment(POLICY, tools=[lookup_order, issue_refund]) as env:
            model = ScriptedModel([
                call("issue_refund", order_id="A-1", amount="20.00"),
                answer("Refunded $20."),
            ])
            result = await Agent(env.runtime, model).run("Refund $20 on A-1", env.spec())
            assert result.state is RunState.COMPLETED
            model.assert_done()

Nothing here touches a network or the real clock's date: a test reads the same
on every machine and every day.
"""

from __future__ import annotations

import inspect
import json
import shutil
import tempfile
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from types import TracebackType
from typing import Any, Literal

from proctor.clock import Clock
from proctor.models import (
    AssistantMessage,
    Message,
    ModelRequest,
    ModelResponse,
    TokenUsage,
    ToolCall,
    ToolResultMessage,
)
from proctor.policy import PolicyBundle
from proctor.runs import Run, RunSpec
from proctor.runtime import CallObserver, Runtime
from proctor.settings import Settings
from proctor.telemetry import RunTelemetry
from proctor.tools import Tool, ToolRegistry

__all__ = [
    "Call",
    "FunctionModel",
    "ManualClock",
    "ScriptError",
    "ScriptedModel",
    "Step",
    "TestEnvironment",
    "answer",
    "call",
    "call_json",
    "plan",
]

# -- time ------------------------------------------------------------------------------


class ManualClock:
    """A clock that moves only when told: for expiry and wall-time budgets in tests.

    ::

        clock = ManualClock()                 # 2026-01-01T00:00:00Z
        clock.advance(3600)                   # an hour later: approvals with ttl_s=3600 expire
    """

    def __init__(self, start: datetime | None = None) -> None:
        self._now = start or datetime(2026, 1, 1, tzinfo=UTC)

    def now(self) -> datetime:
        return self._now

    def monotonic(self) -> float:
        # Durations still use real time so stage timings stay meaningful.
        return time.monotonic()

    def advance(self, seconds: float) -> None:
        """Move the wall clock on by ``seconds``."""
        self._now += timedelta(seconds=seconds)


# -- models ----------------------------------------------------------------------------


class ScriptError(AssertionError):
    """A scripted model was used in a way its script did not foresee: a test failure."""


class FunctionModel:
    """A model played by a function: ``fn(request) -> response``, sync or async.

    For tests that answer from what the request holds::

        def echo(request: ModelRequest) -> ModelResponse:
            return ModelResponse(model="echo", content=str(request.messages[-1].content))

        model = FunctionModel(echo)
        ...
        assert len(model.requests) == 1
    """

    def __init__(
        self,
        fn: Callable[[ModelRequest], ModelResponse | Awaitable[ModelResponse]],
        *,
        name: str = "simulated:cheap",
    ) -> None:
        self._fn = fn
        self._name = name
        self.requests: list[ModelRequest] = []
        """Every request the model was asked, in order."""

    @property
    def name(self) -> str:
        return self._name

    async def complete(self, request: ModelRequest) -> ModelResponse:
        self.requests.append(request)
        answer = self._fn(request)
        return await answer if inspect.isawaitable(answer) else answer


@dataclass(frozen=True)
class Call:
    """One tool call a scripted model proposes; build it with :func:`call` or
    :func:`call_json`. On its own in a script it is a step with just that call."""

    tool: str
    arguments: str
    """The arguments as JSON text, exactly as the model writes them (it may be malformed)."""

    def describe(self) -> str:
        return f"call {self.tool}({self.arguments})"


@dataclass(frozen=True)
class Step:
    """One answer of a scripted model: tool calls (a proposal, or a plan of several), or a
    final answer. Build it with :func:`plan` or :func:`answer`."""

    calls: tuple[Call, ...] = ()
    content: str | None = None
    usage: TokenUsage | None = None
    """Tokens this answer reports; ``None``: the model's default usage."""

    def describe(self) -> str:
        if not self.calls:
            return f"answer {self.content!r}"
        return " + ".join(c.describe() for c in self.calls)


def call(tool: str, /, **arguments: Any) -> Call:
    """A scripted tool call: ``call("issue_refund", order_id="A-1", amount="20.00")``.

    The arguments are written as JSON; values JSON has no type for (``Decimal``,
    dates) are written as their text.
    """
    return Call(tool, json.dumps(arguments, default=str))


def call_json(tool: str, arguments: str) -> Call:
    """A scripted tool call whose arguments are given as raw JSON text, possibly malformed:
    ``call_json("issue_refund", '{"order_id": ')``, to test how a run copes."""
    return Call(tool, arguments)


def plan(*calls: Call, content: str | None = None, usage: TokenUsage | None = None) -> Step:
    """One answer proposing several calls at once: a plan the runtime checks as a whole.

    ``plan(call("lookup_order", order_id="A-1"), call("issue_refund", ...))``
    """
    if not calls:
        raise ValueError("a plan needs at least one call; use answer(...) for a final answer")
    return Step(calls=calls, content=content, usage=usage)


def answer(text: str, *, usage: TokenUsage | None = None) -> Step:
    """A final answer: no tool calls, the run's reply to its requester."""
    return Step(content=text, usage=usage)


ScriptItem = Call | Step | ModelResponse
"""What a script holds: a call, a step, or a response built by hand."""


def _describe(item: ScriptItem) -> str:
    if isinstance(item, ModelResponse):
        if item.is_final:
            return f"answer {item.content!r}"
        return " + ".join(f"call {c.tool}({c.arguments})" for c in item.tool_calls)
    return item.describe()


def _shorten(text: str, limit: int = 200) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _describe_message(message: Message) -> str:
    if isinstance(message, ToolResultMessage):
        return f"tool result of {message.tool}: {_shorten(message.content)!r}"
    if isinstance(message, AssistantMessage) and message.tool_calls:
        return "assistant: " + ", ".join(f"{c.tool}({c.arguments})" for c in message.tool_calls)
    return f"{message.role}: {_shorten(message.content or '')!r}"


def _describe_request(request: ModelRequest) -> str:
    last = _describe_message(request.messages[-1]) if request.messages else "(no messages)"
    offered = ", ".join(t.name for t in request.tools) or "none"
    return f"the last message was {last}; tools offered: {offered}"


class ScriptedModel:
    """A model that answers from a script, one step per call. A call the script did not
    foresee, a step left unused (see :meth:`assert_done`) or a call to a tool the request
    does not offer fails the test with a :class:`ScriptError`.

    ::

        model = ScriptedModel([
            call("lookup_order", order_id="A-1"),                 # one call
            plan(call("issue_refund", order_id="A-1", amount="20.00"),
                 call("send_email", to="c-1", body="Refunded")),  # a plan of two
            call_json("issue_refund", '{"order_id": '),           # malformed JSON
            answer("Refunded $20."),                              # the final answer
        ])
        ...
        model.assert_done()

    ``allow_unoffered_tools=True`` lets a script call tools the request does not
    offer: for tests of a model that invents a tool.
    """

    def __init__(
        self,
        script: Sequence[ScriptItem],
        *,
        name: str = "simulated:cheap",
        usage: TokenUsage | None = None,
        allow_unoffered_tools: bool = False,
    ) -> None:
        self._script = list(script)
        self._next = 0
        self._name = name
        self._usage = usage or TokenUsage()
        self._allow_unoffered = allow_unoffered_tools
        self._errors: list[ScriptError] = []
        self.requests: list[ModelRequest] = []
        """Every request the model was asked, in order."""

    @property
    def name(self) -> str:
        return self._name

    async def complete(self, request: ModelRequest) -> ModelResponse:
        self.requests.append(request)
        number = len(self.requests)
        if self._next >= len(self._script):
            self._fail(
                f"{self._name}: model call {number} was not scripted (the script has "
                f"{len(self._script)} step(s)); {_describe_request(request)}"
            )
        item = self._script[self._next]
        self._next += 1
        response = self._response(item, number)
        self._check_offered(response, request, number)
        return response

    def assert_done(self) -> None:
        """Fail if the script was misused, or if any of its steps was never asked for."""
        if self._errors:
            raise self._errors[0]
        left = self._script[self._next :]
        if left:
            steps = "; ".join(
                f"step {self._next + i + 1}: {_describe(item)}" for i, item in enumerate(left)
            )
            raise ScriptError(
                f"{self._name}: {len(left)} scripted step(s) were never asked for (the model "
                f"was called {len(self.requests)} time(s)): {steps}"
            )

    def _fail(self, message: str) -> None:
        error = ScriptError(message)
        self._errors.append(error)  # kept: a caller that swallows it still fails assert_done
        raise error

    def _response(self, item: ScriptItem, number: int) -> ModelResponse:
        if isinstance(item, ModelResponse):
            return item
        step = Step(calls=(item,)) if isinstance(item, Call) else item
        return ModelResponse(
            model="scripted",
            content=step.content,
            tool_calls=tuple(
                ToolCall(id=f"call_{number}_{i}", tool=c.tool, arguments=c.arguments)
                for i, c in enumerate(step.calls)
            ),
            usage=step.usage or self._usage,
        )

    def _check_offered(self, response: ModelResponse, request: ModelRequest, number: int) -> None:
        if self._allow_unoffered:
            return
        offered = {t.name for t in request.tools}
        for tc in response.tool_calls:
            if tc.tool not in offered:
                names = ", ".join(sorted(offered)) or "none"
                self._fail(
                    f"{self._name}: step {number} of the script calls {tc.tool!r}, which the "
                    f"request does not offer (tools offered: {names})"
                    "; script a tool the agent offers, or pass allow_unoffered_tools=True to "
                    "test a model that invents one"
                )


# -- a runtime on a temporary store ------------------------------------------------------


class TestEnvironment:
    """A :class:`~proctor.Runtime` on a temporary store, with a policy written inline.

    The Cedar text (and ``proctor.yaml`` text) is written to a bundle folder in a
    temporary directory; the store is SQLite in that directory unless ``db_url``
    names another; the clock is a :class:`ManualClock`; telemetry is off. Closing
    the environment (or leaving its ``with`` / ``async with`` block) closes every
    runtime it built and removes the temporary directory.

    ::

        POLICY = '''
        @id("refund-small")
        permit(principal, action == Action::"issue_refund", resource)
        when { context.args.amount.lessThanOrEqual(decimal("100.00")) };
        '''

        async def test_small_refunds_run() -> None:
            async with TestEnvironment(POLICY, tools=[issue_refund]) as env:
                run = await env.start_run()
                outcome = await run.call("issue_refund", {"order_id": "A-1", "amount": "20.00"})
                assert outcome.status is CallStatus.EXECUTED

    ``bundle`` takes an existing bundle (a folder or a loaded :class:`PolicyBundle`)
    instead of Cedar text. Other keyword arguments (``credentials``,
    ``retry_backoff_s``) go to every :class:`Runtime` the environment builds.
    """

    __test__ = False  # a kit class, not a pytest test class

    def __init__(
        self,
        policy: str | None = None,
        *,
        proctor_yaml: str = "label: test\n",
        bundle: PolicyBundle | Path | None = None,
        tools: Sequence[Tool] | ToolRegistry = (),
        db_url: str | None = None,
        directory: Path | None = None,
        clock: Clock | None = None,
        settings: Settings | None = None,
        observers: Sequence[CallObserver] = (),
        telemetry: RunTelemetry | Literal["environment"] | None = None,
        spec: RunSpec | None = None,
        **runtime_options: Any,
    ) -> None:
        """
        :param policy: Cedar text of the bundle's policies, written to ``policy.cedar``.
        :param proctor_yaml: the bundle's ``proctor.yaml``: label, approvals, budgets...
        :param bundle: an existing bundle instead of ``policy`` (not both).
        :param tools: the tools every runtime of the environment governs.
        :param db_url: the store; default SQLite in the temporary directory.
        :param directory: a folder to use (and keep) instead of a temporary one.
        :param clock: default a :class:`ManualClock` at 2026-01-01, shared by every runtime.
        :param settings: other settings (``lease_s``, ``checkpoint_every``...); ``home``
            and ``db_url`` are the environment's.
        :param telemetry: default off; ``"environment"`` exports as the ``OTEL_*`` variables say.
        :param spec: the run spec :meth:`spec` starts from.
        """
        if policy is not None and bundle is not None:
            raise ValueError("give the policy as Cedar text or as a bundle, not both")
        self._owns_directory = directory is None
        self.directory = directory or Path(tempfile.mkdtemp(prefix="proctor-test-"))
        """Where the store, the bundle and the runtime's home live."""
        self.home = self.directory / "home"
        self.db_url = db_url or (settings.db_url if settings else None) or self._sqlite_url()
        self.bundle: PolicyBundle | Path | None = bundle
        """The policy bundle every runtime loads: the folder written from ``policy``."""
        if policy is not None:
            self.bundle = self._write_bundle(policy, proctor_yaml)
        self.tools = tools if isinstance(tools, ToolRegistry) else ToolRegistry(tools)
        self.clock: Clock = clock or ManualClock()
        self.settings = (settings or Settings()).model_copy(
            update={"home": self.home, "db_url": self.db_url}
        )
        self._observers = tuple(observers)
        self._telemetry = telemetry
        self._options = runtime_options
        self._spec = spec or RunSpec(
            agent="test-agent",
            role="agent",
            tenant="test",
            workflow="test",
            requester="tester",
        )
        self.runtimes: list[Runtime] = []
        """Every runtime built, the first being :attr:`runtime`; all closed with the environment."""

    def _sqlite_url(self) -> str:
        return f"sqlite:///{self.directory / 'proctor.db'}"

    def _write_bundle(self, policy: str, proctor_yaml: str) -> Path:
        folder = self.directory / "bundle"
        folder.mkdir(parents=True, exist_ok=True)
        (folder / "policy.cedar").write_text(policy)
        (folder / "proctor.yaml").write_text(proctor_yaml)
        return folder

    @property
    def runtime(self) -> Runtime:
        """The environment's runtime, built on first use."""
        if not self.runtimes:
            self.new_runtime()
        return self.runtimes[0]

    def new_runtime(self, **overrides: Any) -> Runtime:
        """Another runtime on the same store, bundle, tools and clock: what another process
        would build, to resume a run or decide an approval. ``overrides`` go to
        :class:`Runtime` (``tools=``, ``policy=``, ``observers=``...)."""
        options: dict[str, Any] = {
            "policy": self.bundle,
            "tools": self.tools,
            "settings": self.settings,
            "clock": self.clock,
            "observers": self._observers,
            "telemetry": self._telemetry,
            **self._options,
            **overrides,
        }
        rt = Runtime(**options)
        self.runtimes.append(rt)
        return rt

    def spec(self, **fields: Any) -> RunSpec:
        """A run spec: the environment's, with ``fields`` changed
        (``env.spec(tenant="globex", budget={"tool_calls": 3})``)."""
        return RunSpec.model_validate({**self._spec.model_dump(), **fields})

    async def start_run(self, **fields: Any) -> Run:
        """Open a run on :attr:`runtime` with ``spec(**fields)``."""
        return await self.runtime.start_run(self.spec(**fields))

    def close(self) -> None:
        """Close every runtime built, then remove the temporary directory."""
        while self.runtimes:
            self.runtimes.pop().close()
        if self._owns_directory:
            shutil.rmtree(self.directory, ignore_errors=True)

    def __enter__(self) -> TestEnvironment:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    async def __aenter__(self) -> TestEnvironment:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()
