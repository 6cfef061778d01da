"""The role sets, declared once: who works here, who administers, and what a role implies."""
from __future__ import annotations

EVERYONE = frozenset({"everyone"})  # a command anyone may run
ADMINS = frozenset({"owner", "admin"})  # administer the whole desk
OWNERS = frozenset({"owner"})  # of the global roles, only the owner buys seats (DESIGN: roles)
TEAM = ADMINS | {"staff"}  # the team that serves customers (lists and reads customer records)
# People who work here: they are not listed among the customers.
WORKING_ROLES = frozenset({"owner", "admin", "staff", "support"})
# People with an account of their own here: everyone who works here, and a group's manager too.
ACCOUNT_ROLES = WORKING_ROLES | {"manager"}

# Roles implied by a stronger role.
IMPLIED_ROLES = {"owner": {"admin", "staff"}, "admin": {"staff"}}


def effective_roles(granted: set[str]) -> set[str]:
    """The roles someone acts with: what anyone has, what they were granted, and what that implies."""
    roles = {"everyone", "customer", *granted}
    for role in granted:
        roles |= IMPLIED_ROLES.get(role, set())
    return roles
