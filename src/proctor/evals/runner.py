"""Running a bank: each scenario in a fresh world, through the agent, judged from the store.

The application comes as an ``App``: its policy bundle, system prompt and
simulated playbook, and its eval suite (``proctor.evals.suite``), which builds
the worlds and brings the rubrics. One proctor store serves the whole eval
(SQLite under ``out_dir`` unless a URL is given; the audit key is kept beside
it). Each scenario run gets its own world under ``out_dir/worlds/``, built by
the suite, and its own runtime with the tools bound to that world. The same
bank and seed give the same results, apart from run ids, timestamps and
durations; results come back in bank order, repeats in order.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from rich.progress import Progress

import proctor
from proctor.agent import Agent, AgentConfig, AgentResult
from proctor.app import App
from proctor.approvals import Approver
from proctor.audit import SigningKey
from proctor.clock import Clock, SystemClock
from proctor.errors import ConfigError, NotAllowedToApprove
from proctor.evals import checks
from proctor.evals.bank import Bank
from proctor.evals.metrics import summarize
from proctor.evals.report import Manifest, Report, ScenarioResult
from proctor.evals.scenario import Scenario
from proctor.evals.suite import EvalSuite, suite_of
from proctor.models import Model, Playbook
from proctor.models.registry import model_from_spec
from proctor.policy import PolicyBundle
from proctor.runs import Origin, RunSpec
from proctor.runtime import Runtime
from proctor.settings import Settings
from proctor.states import RunState

__all__ = ["MAX_APPROVAL_ROUNDS", "run_bank"]

MAX_APPROVAL_ROUNDS = 5


@dataclass(frozen=True)
class _Env:
    out_dir: Path
    settings: Settings
    bundle: PolicyBundle
    suite: EvalSuite
    playbook: Playbook | None
    seed_offset: int
    config: AgentConfig


def _model(
    scenario: Scenario, seed: int, playbook: Playbook | None
) -> Model | Callable[[str], Model]:
    faults = scenario.model.faults

    def make(spec: str) -> Model:
        return model_from_spec(spec, playbook=playbook, seed=seed, faults=faults)

    if scenario.model.model == "simulated":
        return make  # routed: each request's route picks the tier
    return make(scenario.model.model)


async def _approve(
    rt: Runtime, agent: Agent, scenario: Scenario, result: AgentResult
) -> AgentResult:
    decision = scenario.approver.decision
    rounds = 0
    while (
        decision != "none"
        and result.state is RunState.AWAITING_APPROVAL
        and result.approval_id is not None
        and rounds < MAX_APPROVAL_ROUNDS
    ):
        rounds += 1
        who = Approver(scenario.approver.name, scenario.approver.role)
        try:
            if decision == "approve":
                rt.approvals.approve(result.approval_id, who, f"eval scenario {scenario.id}")
            else:
                rt.approvals.deny(result.approval_id, who, f"eval scenario {scenario.id}")
        except NotAllowedToApprove:
            return result  # this approver may not decide it: the request stays pending
        result = await agent.resume(result.run_id)
    return result


async def _run_one(
    env: _Env, scenario: Scenario, repeat: int
) -> tuple[ScenarioResult, tuple[str, ...]]:
    world = env.suite.world(env.out_dir / "worlds" / f"{scenario.id}.{repeat}.db", scenario)
    seed = scenario.model.seed + env.seed_offset + repeat
    rt = Runtime(policy=env.bundle, tools=world.tools, settings=env.settings)
    agent = Agent(rt, _model(scenario, seed, env.playbook), config=env.config)
    started = time.perf_counter()
    defaults = env.suite.run
    tenant = scenario.tenant or defaults.tenant
    try:
        spec = RunSpec(
            agent=defaults.agent.format(tenant=tenant),
            role=defaults.role,
            tenant=tenant,
            workflow=defaults.workflow,
            requester=scenario.requester or defaults.requester,
            origin=Origin.EVAL,
        )
        result = await agent.run(scenario.request, spec)
        result = await _approve(rt, agent, scenario, result)
        duration = time.perf_counter() - started
        facts = checks.collect(rt.store, result.run_id)
    finally:
        await agent.aclose()
        rt.close()
    verdict = checks.evaluate(scenario, facts, world, env.suite.rubric_index)
    sensitive = checks.sensitive_values(world.sensitive_values(), [scenario.request])
    found = checks.incidents(scenario, facts, sensitive)
    return (
        ScenarioResult(
            scenario_id=scenario.id,
            labels=list(scenario.labels),
            repeat=repeat,
            run_id=facts.run_id,
            state=facts.state,
            reason=facts.reason,
            passed=verdict.passed,
            failures=verdict.failures,
            incidents=found,
            cost_usd=float(facts.cost_usd),
            tokens=facts.tokens,
            duration_s=duration,
            model_calls=facts.model_calls,
            steps=len(facts.steps),
            escalated=facts.escalated,
        ),
        facts.models,
    )


def _sha256_json(value: Any) -> str:
    text = json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(text.encode()).hexdigest()


def _tool_schema_hash(app: App) -> str:
    tools = app.tools
    return _sha256_json(
        sorted(
            (
                {"name": t.name, "description": t.description, "parameters": t.json_schema()}
                for t in tools
            ),
            key=lambda t: str(t["name"]),
        )
    )


def _crashed(scenario: Scenario, repeat: int, exc: Exception) -> ScenarioResult:
    """A scenario that raised instead of ending: a failure the report shows, not a stop."""
    return ScenarioResult(
        scenario_id=scenario.id,
        labels=list(scenario.labels),
        repeat=repeat,
        run_id="",
        state="error",
        reason=None,
        passed=False,
        failures=[f"the scenario raised {type(exc).__name__}: {exc}"],
        incidents=[],
        cost_usd=0.0,
        tokens=0,
        duration_s=0.0,
        model_calls=0,
        steps=0,
        escalated=False,
    )


async def run_bank(
    bank: Bank,
    *,
    app: App,
    out_dir: Path,
    seed_offset: int = 0,
    repeats: int = 1,
    concurrency: int = 4,
    progress: bool = True,
    store_url: str | None = None,
    clock: Clock | None = None,
    config: AgentConfig | None = None,
    settings: Settings | None = None,
    policy: Path | None = None,
) -> Report:
    """Run every scenario of ``bank`` ``repeats`` times on ``app``; write
    ``out_dir/report.json``.

    The app's eval suite builds each scenario's world and judges it with its rubrics;
    every scenario is checked against the suite before anything runs. The agent runs
    with the app's system prompt (unless ``config`` is given) and the simulated model
    with the app's playbook. Runs go into ``settings``' store with its audit key when
    given (the deployment's, so the service shows them), else into a store of their
    own under ``out_dir``. ``policy`` is a candidate bundle to evaluate instead of the
    app's own.
    """
    if repeats < 1 or concurrency < 1:
        raise ConfigError("repeats and concurrency must be at least 1")
    suite = suite_of(app)
    for scenario in bank.scenarios:
        suite.check(scenario)
    out_dir.mkdir(parents=True, exist_ok=True)
    if config is None:
        config = AgentConfig() if app.system_prompt is None else AgentConfig(app.system_prompt)
    if settings is None:
        settings = Settings(home=out_dir, db_url=store_url or f"sqlite:///{out_dir / 'proctor.db'}")
    SigningKey.load_or_generate(settings.key_path)  # made once, before runs race to it
    env = _Env(
        out_dir,
        settings,
        PolicyBundle.load(policy or app.policy),
        suite,
        app.playbook,
        seed_offset,
        config,
    )
    Runtime(policy=env.bundle, settings=settings).close()  # migrate the store once
    jobs = [(s, r) for s in bank.scenarios for r in range(repeats)]
    gate = asyncio.Semaphore(concurrency)

    with Progress(disable=not progress, transient=True) as bar:
        task = bar.add_task(f"{suite.name}: scenarios", total=len(jobs))

        async def one(scenario: Scenario, repeat: int) -> tuple[ScenarioResult, tuple[str, ...]]:
            async with gate:
                try:
                    done = await _run_one(env, scenario, repeat)
                except Exception as exc:  # one broken scenario must not hide the others
                    done = (_crashed(scenario, repeat, exc), ())
            bar.advance(task)
            return done

        outcomes = await asyncio.gather(*(one(s, r) for s, r in jobs))

    results = [result for result, _ in outcomes]
    models = sorted({m for _, used in outcomes for m in used})
    manifest = Manifest(
        proctor_version=proctor.__version__,
        policy_version=str(env.bundle.version),
        model_ids=models,
        prompt_hash=hashlib.sha256(env.config.system_prompt.encode()).hexdigest(),
        tool_schema_hash=_tool_schema_hash(app),
        bank_hash=bank.digest,
        seed=seed_offset,
        repeats=repeats,
        created_at=(clock or SystemClock()).now().isoformat(),
    )
    unnecessary = {s.id for s in bank.scenarios if s.expect.escalation is False}
    report = Report(
        suite=suite.name,
        manifest=manifest,
        summary=summarize(results, unnecessary=unnecessary),
        results=results,
    )
    (out_dir / "report.json").write_text(
        json.dumps(report.model_dump(mode="json"), indent=2) + "\n", encoding="utf-8"
    )
    return report
