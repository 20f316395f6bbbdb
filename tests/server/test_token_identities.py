"""Token names are identities: one per person however it is spelled; tenants and names are
checked before anything is stored."""

from __future__ import annotations

import pytest

from proctor.errors import TokenError
from proctor.server.tokens import Role, create_token, list_tokens
from tests.server.conftest import World


@pytest.mark.parametrize("name", ["Sam", "\uff53\uff41\uff4d", "SAM\u200b"])
def test_a_second_spelling_of_a_token_name_is_refused(world: World, name: str) -> None:
    before = len(list_tokens(world.rt.store))
    with pytest.raises(TokenError, match="already exists"):
        create_token(world.rt.store, name, Role.APPROVER, None, world.env.clock.now())
    assert len(list_tokens(world.rt.store)) == before


@pytest.mark.parametrize("name", ["", "   ", "\u200b", " sam", "x" * 129])
def test_a_token_name_is_a_name(world: World, name: str) -> None:
    with pytest.raises(TokenError, match="name"):
        create_token(world.rt.store, name, Role.VIEWER, None, world.env.clock.now())


@pytest.mark.parametrize("tenant", ["", "  ", "t" * 129, "acme\n"])
def test_a_token_tenant_is_a_tenant(world: World, tenant: str) -> None:
    with pytest.raises(TokenError, match="tenant"):
        create_token(world.rt.store, "newcomer", Role.VIEWER, tenant, world.env.clock.now())
    assert "newcomer" not in {t.name for t in list_tokens(world.rt.store)}
