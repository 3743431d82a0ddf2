"""The accounts ``nongyun demo`` creates, so the demo still opens with one command.

They are marked ``demo`` in the store: the login page lists exactly those (with the shared demo
password and a banner), and a real deployment, which never ran the demo, shows none.
"""

from __future__ import annotations

from dataclasses import dataclass

from ..errors import BadInput
from ..regions import RegionTree
from .accounts import Accounts
from .model import Role

DEMO_PASSWORD = "nongyun-demo"


@dataclass(frozen=True)
class DemoAccount:
    username: str
    role: Role
    scope_level: str  # district, township or village: the first one of the tree at that tier
    note_zh: str
    note_en: str


DEMO_ACCOUNTS = (
    DemoAccount("demo-district", "admin", "district", "区级管理员（全区）", "district admin (whole district)"),
    DemoAccount("demo-township", "viewer", "township", "乡镇查看（一个乡镇）", "township viewer (one township)"),
    DemoAccount("demo-village", "editor", "village", "村级录入（一个村）", "village editor (one village)"),
)


def demo_scope(tree: RegionTree, level: str) -> str:
    """The demo's township is the first whose villages are mostly farming ones (region kind
    ``village``: urban communities hold no plots, no target and no harvest form), and its village
    the first farming village of it, so the demo user sees stations, plots and harvests wherever the
    tree comes from; a tree without kinds falls back to the first township with villages."""
    if level == "district":
        return tree.district.code
    towns = [t for t in tree.district.children if t.children]
    farming = [t for t in towns if 2 * sum(v.kind == "village" for v in t.children) > len(t.children)]
    town = (farming or towns)[0]
    if level == "township":
        return town.code
    return next((v for v in town.children if v.kind == "village"), town.children[0]).code


def ensure_demo_accounts(accounts: Accounts, now: int) -> list[str]:
    """Create the missing demo accounts; returns the names created."""
    made = []
    for d in DEMO_ACCOUNTS:
        if accounts.store.user(d.username) is not None:
            continue
        try:
            accounts.add(d.username, DEMO_PASSWORD, d.role, demo_scope(accounts.tree, d.scope_level), now, demo=True)
        except BadInput:  # created meanwhile by another process
            continue
        made.append(d.username)
    return made
