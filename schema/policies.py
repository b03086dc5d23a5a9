"""Policy statements: the contract between the hub (which defines them) and the realms (which
enforce them on their own data).

A :class:`Statement` grants some :class:`Action` flags to a grantee within a scope:

* the **grantee** is a user, everyone, every signed-in user, or a role that only a realm can
  resolve from its own data: the holders of a post in the group (``POST``) or in its parent
  group (``PARENT_POST``), the members of the group with a status (``MEMBER``), the owner
  (GOD) of the parent group (``PARENT_OWNER``), or the leaders' council (``COUNCIL``: the
  active leaders of the realm's top-level groups);
* the **scope** is one realm (``realm_id``; None: every realm), optionally one group
  (``group_id``, with ``subtree`` its descendants too), or, for profile actions, one user
  (``target_user_id``).

GOD on a group is not a statement: it is the group's owner, kept by the realm with the group
(delegation: whoever creates a group owns it), and it allows every group action there.

The hub serves a realm its :class:`PolicySet` (``GET /internal/policies?realm=<id>``): the
statements that apply to that realm, the top-level admins, and a version.
"""

from __future__ import annotations

import enum
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from typing import Any


class Action(enum.Enum):
    """A permission flag of a statement (GraphQL enum values, camelCase in JSON)."""

    VIEW_MEMBERS = "viewMembers"
    EDIT_MEMBERS = "editMembers"
    VIEW_GROUP = "viewGroup"
    EDIT_GROUP_PROFILE = "editGroupProfile"
    MOVE_GROUP_OWNER = "moveGroupOwner"
    VIEW_SCORES = "viewScores"
    EDIT_SCORES = "editScores"
    EVALUATE_SCORES = "evaluateScores"
    VIEW_BASIC_PROFILE = "viewBasicProfile"
    VIEW_FULL_PROFILE = "viewFullProfile"
    EDIT_PROFILE = "editProfile"
    #: On a group: create subgroups under it; realm-wide (no group): create top-level groups.
    CREATE_GROUP = "createGroup"


#: Actions on a user's profile, decided by the hub.
PROFILE_ACTIONS = frozenset(
    {Action.VIEW_BASIC_PROFILE, Action.VIEW_FULL_PROFILE, Action.EDIT_PROFILE}
)
#: Everything GOD (a group's owner) may do on the group.
GROUP_ACTIONS = frozenset(Action) - PROFILE_ACTIONS


class GranteeKind(enum.Enum):
    """Who a statement grants its actions to."""

    ANYONE = "ANYONE"
    SIGNED_IN = "SIGNED_IN"
    USER = "USER"
    POST = "POST"
    PARENT_POST = "PARENT_POST"
    PARENT_OWNER = "PARENT_OWNER"
    MEMBER = "MEMBER"
    COUNCIL = "COUNCIL"


#: Grantees a realm resolves relative to the group an action is about.
GROUP_RELATIVE = frozenset(
    {GranteeKind.POST, GranteeKind.PARENT_POST, GranteeKind.PARENT_OWNER, GranteeKind.MEMBER}
)
#: Post kinds and membership statuses a grantee may name (the realm's enums).
POST_KINDS = frozenset(
    {"LEADER", "FORMER_LEADER", "TREASURER", "LEADER_ASSISTANT", "EVALUATION_HELPER",
     "NEW_MEMBER", "GROUP_SPECIFIC"}
)
MEMBER_STATUSES = frozenset({"NEWBIE", "ACTIVE", "FORMER", "ARCHIVED"})


class InvalidStatement(ValueError):
    """A statement that does not make sense (the message is safe to show the client)."""


@dataclass(frozen=True)
class Statement:
    """One policy statement (see the module docstring)."""

    name: str
    actions: frozenset[Action]
    grantee: GranteeKind
    #: USER: the hub-local user id.
    grantee_user_id: int | None = None
    #: POST / PARENT_POST: a post kind (``LEADER``); MEMBER: a status (``ACTIVE``).
    grantee_role: str | None = None
    #: None: every realm.
    realm_id: str | None = None
    group_id: int | None = None
    subtree: bool = False
    target_user_id: int | None = None
    #: The hub's id of the statement (0 for one not stored yet).
    id: int = 0

    def validate(self) -> Statement:
        """Return self, or raise :class:`InvalidStatement`."""
        if not self.name.strip() or len(self.name) > 200:
            raise InvalidStatement("a statement needs a name of 1-200 characters")
        if not self.actions:
            raise InvalidStatement("a statement needs at least one action")
        if (self.grantee is GranteeKind.USER) != (self.grantee_user_id is not None):
            raise InvalidStatement("a USER grantee needs a user, and only a USER grantee has one")
        if self.grantee in (GranteeKind.POST, GranteeKind.PARENT_POST):
            if self.grantee_role not in POST_KINDS:
                raise InvalidStatement(f"a {self.grantee.value} grantee needs a post kind")
        elif self.grantee is GranteeKind.MEMBER:
            if self.grantee_role not in MEMBER_STATUSES:
                raise InvalidStatement("a MEMBER grantee needs a membership status")
        elif self.grantee_role is not None:
            raise InvalidStatement(f"a {self.grantee.value} grantee has no role")
        if self.group_id is not None and self.realm_id is None:
            raise InvalidStatement("a statement on a group must name the group's realm")
        if self.subtree and self.group_id is None:
            raise InvalidStatement("`subtree` needs a group")
        if self.target_user_id is not None and not self.actions <= PROFILE_ACTIONS:
            raise InvalidStatement("a statement on one user may only grant profile actions")
        return self

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "name": self.name,
            "actions": sorted(a.value for a in self.actions),
            "grantee": self.grantee.value,
            "granteeUserId": self.grantee_user_id,
            "granteeRole": self.grantee_role,
            "realm": self.realm_id,
            "groupId": self.group_id,
            "subtree": self.subtree,
            "targetUserId": self.target_user_id,
        }

    @classmethod
    def from_json(cls, body: Mapping[str, Any]) -> Statement:
        try:
            return cls(
                id=int(body.get("id") or 0),
                name=str(body["name"]),
                actions=frozenset(Action(a) for a in body["actions"]),
                grantee=GranteeKind(body["grantee"]),
                grantee_user_id=body.get("granteeUserId"),
                grantee_role=body.get("granteeRole"),
                realm_id=body.get("realm"),
                group_id=body.get("groupId"),
                subtree=bool(body.get("subtree", False)),
                target_user_id=body.get("targetUserId"),
            ).validate()
        except (KeyError, TypeError, ValueError) as exc:
            raise InvalidStatement(f"not a policy statement: {exc}") from None

    def applies_to_realm(self, realm_id: str) -> bool:
        return self.realm_id is None or self.realm_id == realm_id


@dataclass(frozen=True)
class PolicySet:
    """What a realm enforces: the statements for it, the top-level admins, and a version."""

    version: int
    statements: tuple[Statement, ...] = ()
    admins: frozenset[int] = field(default_factory=frozenset)

    def granting(self, action: Action) -> list[Statement]:
        return [s for s in self.statements if action in s.actions]

    def to_json(self) -> dict[str, Any]:
        return {
            "version": self.version,
            "admins": sorted(self.admins),
            "statements": [s.to_json() for s in self.statements],
        }

    @classmethod
    def from_json(cls, body: Mapping[str, Any]) -> PolicySet:
        try:
            return cls(
                version=int(body["version"]),
                statements=tuple(Statement.from_json(s) for s in body["statements"]),
                admins=frozenset(int(a) for a in body.get("admins", ())),
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise InvalidStatement(f"not a policy set: {exc}") from None


def _s(name: str, actions: Iterable[Action], grantee: GranteeKind, role: str | None = None
       ) -> Statement:
    return Statement(name=name, actions=frozenset(actions), grantee=grantee, grantee_role=role)


A = Action
#: The rules of the domain, for every realm. The hub seeds them (and serves them from its
#: database, where admins may revoke or add to them); a realm with no hub configured
#: enforces these.
DEFAULT_STATEMENTS: tuple[Statement, ...] = (
    # The group directory (groups and who is in them, by name) is the community's public
    # face: a deliberate extension of "anyone signed in may view a group" to anonymous
    # callers. Revoking this statement leaves it to signed-in users.
    _s("Public group directory", [A.VIEW_GROUP, A.VIEW_MEMBERS], GranteeKind.ANYONE),
    _s("Signed-in users", [A.VIEW_GROUP, A.VIEW_MEMBERS, A.VIEW_BASIC_PROFILE],
       GranteeKind.SIGNED_IN),
    _s("Leaders", [A.EDIT_GROUP_PROFILE, A.EDIT_MEMBERS, A.VIEW_SCORES, A.EDIT_SCORES,
                   A.CREATE_GROUP], GranteeKind.POST, "LEADER"),
    _s("Leader assistants", [A.EDIT_MEMBERS, A.VIEW_SCORES], GranteeKind.POST,
       "LEADER_ASSISTANT"),
    _s("Evaluation helpers", [A.EDIT_MEMBERS, A.VIEW_SCORES, A.EDIT_SCORES], GranteeKind.POST,
       "EVALUATION_HELPER"),
    # Escalation: the parent's managers keep a limited statement on a subgroup.
    _s("Parent group's leader", [A.MOVE_GROUP_OWNER, A.VIEW_SCORES, A.EVALUATE_SCORES],
       GranteeKind.PARENT_POST, "LEADER"),
    _s("Parent group's owner", [A.MOVE_GROUP_OWNER], GranteeKind.PARENT_OWNER),
    _s("Leaders' council", [A.CREATE_GROUP, A.VIEW_SCORES, A.EVALUATE_SCORES],
       GranteeKind.COUNCIL),
    # Full profiles: between active members of one group (the hub checks it on the groups
    # the realms publish with the federation index).
    _s("Members of a shared group", [A.VIEW_FULL_PROFILE], GranteeKind.MEMBER, "ACTIVE"),
)


def with_realm(statements: Iterable[Statement], realm_id: str | None) -> list[Statement]:
    return [replace(s, realm_id=realm_id) for s in statements]
