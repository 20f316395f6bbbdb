"""Model calls a run pays for before it makes them.

The call's worst case (every input token uncached, every output token written)
must fit the run's caps and the day's workflow and tenant budgets; it is
reserved against the daily budgets, which every worker shares, and replaced by
the real cost when the answer comes. A call that could cross a cap is not
made: the run ends ``failed_safe(budget_exceeded)``.
"""

from __future__ import annotations

import sqlalchemy as sa

from proctor.budgets import daily_scopes, model_cap_breach
from proctor.errors import BudgetExceeded
from proctor.models import Model, ModelRequest, ModelResponse
from proctor.runs import journal
from proctor.runs.leases import heartbeat
from proctor.runs.live import LiveRun


async def ask(live: LiveRun, model: Model, request: ModelRequest) -> ModelResponse:
    """One model call, paid for before it is made."""
    live.ensure_live()
    s, spec, usage = live.services, live.record.spec, live.record.usage
    worst_usd, worst_tokens = s.prices.worst_case(model.name, request)
    breach = model_cap_breach(spec.budget, usage, worst_usd, worst_tokens)
    if breach is not None:
        detail = f"budget would be crossed: {breach}"
        await live.fail(
            BudgetExceeded(f"run {live.id} failed safe before a model call: {detail}"), detail
        )
    budgets = s.policy.settings.budgets
    scopes = daily_scopes(spec.tenant, spec.workflow, budgets.tenant, budgets.workflow)
    day = s.clock.now().date().isoformat()
    try:
        held = s.ledger.reserve(live.id, scopes, day, worst_usd, worst_tokens)
    except BudgetExceeded as exc:
        failure = BudgetExceeded(f"run {live.id} failed safe before a model call: {exc}")
        await live.fail(failure, str(exc))
    # A model may think for longer than the lease: keep it while it does.
    beating = heartbeat(s, live.recorder, live.record, float("inf"))
    started = s.clock.now()
    try:
        response = await model.complete(request)
    except BaseException:
        s.ledger.release(held)
        raise
    finally:
        if beating is not None:
            beating.cancel()
    cost = s.prices.cost(model.name, response.usage)
    usage.model_tokens += response.usage.total
    usage.usd += cost

    def paid(conn: sa.Connection) -> None:  # one commit: the ledger, the run, the call
        s.ledger.settle(conn, held, cost, response.usage.total)
        journal.record_model_call(
            conn,
            live.id,
            spec,
            model.name,
            response,
            cost,
            held.nano_usd,
            s.clock.now(),
            started=started,
            params={
                "max_output_tokens": request.max_output_tokens,
                "temperature": request.temperature,
                "tools": len(request.tools),
            },
        )

    live.recorder.usage(live.record, paid)
    return response
