"""The kernel walkthrough that ``proctor demo`` runs: a tiny shop and its refund policy."""

from proctor.demo.shop import BUNDLE, app, shop_tools
from proctor.demo.walkthrough import Walkthrough, run_walkthrough

__all__ = ["BUNDLE", "Walkthrough", "app", "run_walkthrough", "shop_tools"]
