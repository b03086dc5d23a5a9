"""A small real GraphQL executor for the edge's tests, and app/client fixtures.

:class:`SchemaExecutor` implements the edge's ``GraphQLExecutor`` protocol over a graphql-core
schema: it parses, validates and executes for real, and answers request errors without ``data``
as the gateway does. It also records what the edge handed it (headers, include_plan).
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import jwt
import pytest
from graphql import (
    GraphQLArgument,
    GraphQLError,
    GraphQLField,
    GraphQLInt,
    GraphQLList,
    GraphQLNonNull,
    GraphQLObjectType,
    GraphQLSchema,
    GraphQLString,
    execute,
    parse,
    validate,
)
from graphql.execution import get_variable_values
from graphql.language import OperationDefinitionNode
from graphql.pyutils import is_awaitable
from starlette.applications import Starlette

from pek.router.edge.auth import EdgeAuth
from pek.router.edge.errors import EdgeError
from pek.router.http import create_app
from pek.schema import ids
from pek.schema.ids import encode
from pek.schema.tokens import (
    DirectoryKeySource,
    KeyDirectory,
    TokenSigner,
    TokenVerifier,
    bearer_token,
)
from pek.settings import Settings

DEMO_USERS: list[dict[str, Any]] = [
    {"id": encode("User", 1), "name": "Kovács Anna", "nickname": "Panni", "groups": ["KirDev"]},
    {"id": encode("User", 2), "name": "Szabó Bence", "nickname": "Bence", "groups": []},
    {"id": encode("User", 3), "name": "Tóth Csilla", "nickname": "", "groups": ["Schönherz"]},
]


def _build_schema() -> GraphQLSchema:
    group = GraphQLObjectType("Group", {"name": GraphQLField(GraphQLNonNull(GraphQLString))})
    membership = GraphQLObjectType(
        "Membership",
        {
            "group": GraphQLField(group, resolve=lambda m, _: {"name": m}),
            "status": GraphQLField(GraphQLString, resolve=lambda m, _: "ACTIVE"),
        },
    )
    user = GraphQLObjectType(
        "User",
        {
            "id": GraphQLField(GraphQLNonNull(GraphQLString)),
            "name": GraphQLField(GraphQLNonNull(GraphQLString)),
            "nickname": GraphQLField(GraphQLString),
            "memberships": GraphQLField(
                GraphQLList(membership), resolve=lambda u, _: u["groups"]
            ),
        },
    )
    edge = GraphQLObjectType("UserEdge", {"node": GraphQLField(user, resolve=lambda u, _: u)})
    connection = GraphQLObjectType(
        "UserConnection", {"edges": GraphQLField(GraphQLList(edge), resolve=lambda us, _: us)}
    )

    def resolve_me(_: Any, info: Any) -> dict[str, Any] | None:
        # The edge verified the token; a stand-in subgraph only reads its subject (the real
        # subgraphs' own verification is tested in tests/auth).
        token = bearer_token(info.context["headers"])
        viewer = jwt.decode(token, options={"verify_signature": False})["sub"] if token else None
        return next((u for u in DEMO_USERS if u["id"] == viewer), None)

    def resolve_header(_: Any, info: Any, name: str) -> str | None:
        value: str | None = info.context["headers"].get(name)
        return value

    def resolve_boom(_: Any, info: Any) -> str:
        raise ValueError("boom is a field error")

    query = GraphQLObjectType(
        "Query",
        {
            "me": GraphQLField(user, resolve=resolve_me),
            "users": GraphQLField(
                connection,
                args={"first": GraphQLArgument(GraphQLInt)},
                resolve=lambda _, __, first=10: DEMO_USERS[:first],
            ),
            "header": GraphQLField(
                GraphQLString,
                args={"name": GraphQLArgument(GraphQLNonNull(GraphQLString))},
                resolve=resolve_header,
            ),
            "boom": GraphQLField(GraphQLNonNull(GraphQLString), resolve=resolve_boom),
            "hello": GraphQLField(
                GraphQLString,
                args={"name": GraphQLArgument(GraphQLString)},
                resolve=lambda _, __, name="world": f"Hello, {name}!",
            ),
        },
    )
    mutation = GraphQLObjectType(
        "Mutation",
        {
            "rename": GraphQLField(
                GraphQLString,
                args={"name": GraphQLArgument(GraphQLNonNull(GraphQLString))},
                resolve=lambda _, __, name: name,
            )
        },
    )
    return GraphQLSchema(query=query, mutation=mutation)


@dataclass
class Call:
    query: str
    variables: dict[str, Any] | None
    operation_name: str | None
    headers: dict[str, str]
    include_plan: bool


@dataclass
class SchemaExecutor:
    """Executes operations against a graphql-core schema, like the gateway but in one piece."""

    schema: GraphQLSchema = field(default_factory=_build_schema)
    calls: list[Call] = field(default_factory=list)

    async def execute(
        self,
        query: str,
        variables: dict[str, Any] | None = None,
        operation_name: str | None = None,
        *,
        headers: Mapping[str, str] | None = None,
        include_plan: bool = False,
    ) -> dict[str, Any]:
        self.calls.append(Call(query, variables, operation_name, dict(headers or {}), include_plan))
        try:
            document = parse(query)
        except GraphQLError as error:
            return {"errors": [error.formatted]}
        validation_errors = validate(self.schema, document)
        if validation_errors:
            return {"errors": [e.formatted for e in validation_errors]}
        operations = [d for d in document.definitions if isinstance(d, OperationDefinitionNode)]
        chosen = [
            o
            for o in operations
            if operation_name is None or (o.name is not None and o.name.value == operation_name)
        ]
        if len(chosen) != 1:
            return {"errors": [{"message": "Could not determine the operation to execute"}]}
        coerced = get_variable_values(
            self.schema, chosen[0].variable_definitions or (), variables or {}
        )
        if isinstance(coerced, list):
            return {"errors": [e.formatted for e in coerced]}
        result = execute(
            self.schema,
            document,
            variable_values=variables,
            operation_name=operation_name,
            context_value={"headers": dict(headers or {})},
        )
        if is_awaitable(result):
            result = await result
        response: dict[str, Any] = {"data": result.data}  # type: ignore[union-attr]
        if result.errors:  # type: ignore[union-attr]
            response["errors"] = [e.formatted for e in result.errors]  # type: ignore[union-attr]
        if include_plan:
            fields = [s.name.value for s in chosen[0].selection_set.selections]  # type: ignore[attr-defined]
            response["extensions"] = {"queryPlan": {"kind": "Fetch", "rootFields": fields}}
        return response


class FailingExecutor:
    """An executor with a bug: every call raises."""

    async def execute(self, query: str, *args: Any, **kwargs: Any) -> dict[str, Any]:
        raise RuntimeError("gateway bug: secret internals")


@pytest.fixture
def executor() -> SchemaExecutor:
    return SchemaExecutor()


AppFactory = Callable[..., Starlette]


def signer_for(settings: Settings, key_dir: Path) -> TokenSigner:
    return TokenSigner(KeyDirectory(key_dir), settings.token_issuer, settings.token_audience,
                       settings.access_token_seconds)


def local_edge_auth(settings: Settings, key_dir: Path) -> EdgeAuth:
    """Edge authentication over a private key directory; dev tokens are minted as the hub's
    ``POST /auth/dev/token`` does (known users only)."""
    signer = signer_for(settings, key_dir)

    async def mint(user: str) -> str:
        if user not in {u["id"] for u in DEMO_USERS}:
            raise EdgeError(400, "Dev sign-in failed: No such user")
        return signer.mint(ids.decode(user, expected_type="User").local_id)[0]

    verifier = TokenVerifier(DirectoryKeySource(KeyDirectory(key_dir)), settings.token_issuer,
                             settings.token_audience)
    return EdgeAuth(settings, verifier, dev_tokens=mint)


@pytest.fixture
def key_dir(tmp_path: Path) -> Path:
    return tmp_path / "keys"


@pytest.fixture
def make_app(executor: SchemaExecutor, key_dir: Path) -> AppFactory:
    def factory(**kwargs: Any) -> Starlette:
        gateway = kwargs.pop("gateway", executor)
        settings = kwargs.pop("settings", Settings())
        kwargs.setdefault("auth", local_edge_auth(settings, key_dir))
        return create_app(gateway, settings, **kwargs)

    return factory


def client_for(app: Starlette) -> httpx.AsyncClient:
    return httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url="http://testserver"
    )


@pytest.fixture
async def client(make_app: AppFactory) -> AsyncIterator[httpx.AsyncClient]:
    async with client_for(make_app()) as c:
        yield c


@pytest.fixture
async def dev_client(make_app: AppFactory) -> AsyncIterator[httpx.AsyncClient]:
    async with client_for(make_app(settings=Settings(dev=True))) as c:
        yield c
