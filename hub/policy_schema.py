"""The hub's GraphQL for policies: ``policies`` and ``policyEvents`` (queries), ``grantPolicy``
and ``revokePolicy`` (mutations), for top-level admins only.

Everything else sees a ``FORBIDDEN`` (signed in) or ``UNAUTHENTICATED`` (anonymous) error and
nothing changes.
"""

from __future__ import annotations

import datetime as dt
import json

import strawberry

from pek.hub import models
from pek.hub import policies as hub_policies
from pek.hub.schema import HubInfo, User, _load_user
from pek.schema import ids
from pek.schema.context import ClientError, decode_id
from pek.schema.policies import Action, GranteeKind, InvalidStatement, Statement

FORBIDDEN = "FORBIDDEN"
UNAUTHENTICATED = "UNAUTHENTICATED"

strawberry.enum(Action, name="PolicyAction", description="A permission flag of a policy.")
strawberry.enum(GranteeKind, name="GranteeKind", description="Who a policy grants to.")


@strawberry.type(name="PolicyStatement", description="A policy statement with its grant record.")
class Policy:
    id: strawberry.ID
    name: str
    actions: list[Action]
    grantee: GranteeKind
    grantee_role: str | None = strawberry.field(
        description="The post kind (POST, PARENT_POST) or membership status (MEMBER)."
    )
    realm: str | None = strawberry.field(description="The realm id; null: every realm.")
    group_id: strawberry.ID | None = strawberry.field(description="The Group it is limited to.")
    subtree: bool
    granted_at: dt.datetime
    revoked_at: dt.datetime | None
    row: strawberry.Private[models.PolicyStatement]

    @classmethod
    def from_row(cls, row: models.PolicyStatement) -> Policy:
        statement = hub_policies.to_statement(row)
        return cls(
            id=strawberry.ID(ids.encode("Policy", row.id)),
            name=row.name,
            actions=sorted(statement.actions, key=lambda a: a.value),
            grantee=statement.grantee,
            grantee_role=row.grantee_role,
            realm=row.realm_id,
            group_id=strawberry.ID(ids.encode("Group", row.group_id, realm=row.realm_id))
            if row.group_id is not None and row.realm_id is not None else None,
            subtree=row.subtree,
            granted_at=row.granted_at,
            revoked_at=row.revoked_at,
            row=row,
        )

    @strawberry.field(description="The USER grantee.")
    async def grantee_user(self, info: HubInfo) -> User | None:
        return await _user_or_none(info, self.row.grantee_user_id)

    @strawberry.field(description="The user a profile statement is limited to.")
    async def target_user(self, info: HubInfo) -> User | None:
        return await _user_or_none(info, self.row.target_user_id)

    @strawberry.field(description="Who granted it (null: the system's default policies).")
    async def granted_by(self, info: HubInfo) -> User | None:
        return await _user_or_none(info, self.row.granted_by)

    @strawberry.field(description="Who revoked it.")
    async def revoked_by(self, info: HubInfo) -> User | None:
        return await _user_or_none(info, self.row.revoked_by)


@strawberry.type(description="One entry of the policies' audit trail.")
class PolicyEvent:
    policy_id: strawberry.ID
    kind: str = strawberry.field(description="GRANT or REVOKE.")
    at: dt.datetime
    reason: str | None
    actor_row: strawberry.Private[int | None]

    @strawberry.field(description="Who did it (null: the system).")
    async def actor(self, info: HubInfo) -> User | None:
        return await _user_or_none(info, self.actor_row)


@strawberry.input(description="A policy statement to grant.")
class PolicyInput:
    name: str
    actions: list[Action]
    grantee: GranteeKind
    grantee_user_id: strawberry.ID | None = None
    grantee_role: str | None = None
    realm: str | None = None
    group_id: strawberry.ID | None = None
    subtree: bool = False
    target_user_id: strawberry.ID | None = None


async def _user_or_none(info: HubInfo, local_id: int | None) -> User | None:
    return await _load_user(info, local_id) if local_id is not None else None


async def require_admin(info: HubInfo) -> int:
    """The viewer's id if they are a top-level admin; a FORBIDDEN / UNAUTHENTICATED error
    otherwise."""
    viewer = info.context.viewer_id
    if viewer is None:
        raise ClientError("Sign in first", code=UNAUTHENTICATED)
    if viewer not in (await info.context.policies()).admins:
        raise ClientError("Only a top-level admin may manage policies", code=FORBIDDEN)
    return viewer


def _statement(value: PolicyInput) -> Statement:
    group_id: int | None = None
    if value.group_id is not None:
        try:
            gid = ids.decode(value.group_id, expected_type="Group")
        except ids.InvalidGlobalId as exc:
            raise ClientError(str(exc)) from None
        if value.realm is not None and gid.realm != value.realm:
            raise ClientError("`groupId` names a group of another realm than `realm`")
        group_id = gid.local_id
        realm = gid.realm
    else:
        realm = value.realm
    try:
        return Statement(
            name=value.name,
            actions=frozenset(value.actions),
            grantee=value.grantee,
            grantee_user_id=decode_id(value.grantee_user_id, "User")
            if value.grantee_user_id is not None else None,
            grantee_role=value.grantee_role,
            realm_id=realm,
            group_id=group_id,
            subtree=value.subtree,
            target_user_id=decode_id(value.target_user_id, "User")
            if value.target_user_id is not None else None,
        ).validate()
    except InvalidStatement as exc:
        raise ClientError(str(exc)) from None


@strawberry.type
class PolicyQuery:
    @strawberry.field(
        description="Live policy statements (of one realm and those of every realm, if "
        "`realm` is given); top-level admins only."
    )
    async def policies(self, info: HubInfo, realm: str | None = None,
                       include_revoked: bool = False) -> list[Policy]:
        await require_admin(info)
        async with info.context.db()() as session:
            if include_revoked:
                from sqlalchemy import select

                rows = list(await session.scalars(
                    select(models.PolicyStatement).order_by(models.PolicyStatement.id)
                ))
                if realm is not None:
                    rows = [r for r in rows if r.realm_id in (None, realm)]
            else:
                rows = await hub_policies.live_statements(session, realm)
        return [Policy.from_row(r) for r in rows]

    @strawberry.field(description="The audit trail of grants and revocations, oldest first; "
                      "top-level admins only.")
    async def policy_events(self, info: HubInfo, policy_id: strawberry.ID | None = None
                            ) -> list[PolicyEvent]:
        await require_admin(info)
        from sqlalchemy import select

        E = models.PolicyEvent
        statement = select(E).order_by(E.id)
        if policy_id is not None:
            statement = statement.where(E.policy_id == decode_id(policy_id, "Policy"))
        async with info.context.db()() as session:
            rows = list(await session.scalars(statement))
        return [
            PolicyEvent(
                policy_id=strawberry.ID(ids.encode("Policy", r.policy_id)),
                kind=r.kind,
                at=r.at,
                reason=json.loads(r.detail).get("reason"),
                actor_row=r.actor_id,
            )
            for r in rows
        ]


@strawberry.type
class Mutation:
    @strawberry.mutation(description="Grant a policy statement (top-level admins only); "
                         "recorded with who and when.")
    async def grant_policy(self, info: HubInfo, input: PolicyInput,
                           reason: str | None = None) -> Policy:
        admin = await require_admin(info)
        statement = _statement(input)
        async with info.context.db().begin() as session:
            row = await hub_policies.grant(session, statement, admin, reason)
        return Policy.from_row(row)

    @strawberry.mutation(description="Revoke a policy statement (top-level admins only); it "
                         "stays in the audit trail.")
    async def revoke_policy(self, info: HubInfo, id: strawberry.ID,
                            reason: str | None = None) -> Policy:
        admin = await require_admin(info)
        local = decode_id(id, "Policy")
        async with info.context.db().begin() as session:
            row = await hub_policies.revoke(session, local, admin, reason)
            if row is None:
                raise ClientError("No live policy with this ID")
        return Policy.from_row(row)
