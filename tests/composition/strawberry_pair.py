"""Two strawberry federation subgraphs used as a composition fixture.

They exercise what our router needs from composition: an entity extended across
subgraphs, a @shareable value type, an enum, an interface, a union, an input type,
@inaccessible, @requires, @provides, @override and a composed directive.
"""

from __future__ import annotations

from enum import Enum
from typing import Annotated

import strawberry
from strawberry.schema_directive import Location

ROUTING_URL = "https://pek.example/routing/v0.1"


@strawberry.federation.schema_directive(
    locations=[Location.FIELD_DEFINITION],
    name="routing",
    compose=True,
    import_url=ROUTING_URL,
)
class Routing:
    mode: str


# -- subgraph "people" -------------------------------------------------------------


@strawberry.enum
class Visibility(Enum):
    PUBLIC = "PUBLIC"
    MEMBERS = "MEMBERS"


@strawberry.federation.interface
class Node:
    id: strawberry.ID


@strawberry.federation.type(shareable=True)
class Money:
    amount: int
    currency: str


@strawberry.federation.type(keys=["id"])
class Person(Node):
    id: strawberry.ID
    name: str
    email: str | None = strawberry.federation.field(inaccessible=True, default=None)
    nickname: str | None = strawberry.federation.field(shareable=True, default=None)
    visibility: Visibility = Visibility.PUBLIC
    budget: Money | None = None
    city: str | None = None


@strawberry.input
class PersonFilter:
    name_contains: str | None = None
    visibility: Visibility | None = None


@strawberry.type
class PeopleQuery:
    @strawberry.field
    def people(self, filter: PersonFilter | None = None) -> list[Person]:
        return []

    @strawberry.field
    def person(self, id: strawberry.ID) -> Person | None:
        return None


people_schema = strawberry.federation.Schema(query=PeopleQuery, types=[Person, Money, Node])


# -- subgraph "groups" -------------------------------------------------------------


@strawberry.federation.type(keys=["id"])
class Group(Node):
    id: strawberry.ID
    title: str
    budget: Money | None = None
    members: list[GroupPerson] = strawberry.federation.field(
        provides=["nickname"], default_factory=list
    )


@strawberry.federation.type(keys=["id"], name="Person")
class GroupPerson(Node):
    id: strawberry.ID
    nickname: str | None = strawberry.federation.field(external=True, default=None)
    city: str | None = strawberry.federation.field(external=True, default=None)
    visibility: Visibility = strawberry.federation.field(
        override="people", default=Visibility.PUBLIC
    )
    groups: list[Group] = strawberry.federation.field(
        directives=[Routing(mode="fan-out")], default_factory=list
    )
    region: str | None = strawberry.federation.field(requires=["city"], default=None)


SearchResult = Annotated[Group | GroupPerson, strawberry.union("SearchResult")]


@strawberry.input
class GroupsFilter:
    title_contains: str | None = None


@strawberry.type
class GroupsQuery:
    @strawberry.field(directives=[Routing(mode="owner")])
    def group(self, id: strawberry.ID) -> Group | None:
        return None

    @strawberry.field
    def search(self, text: str, filter: GroupsFilter | None = None) -> list[SearchResult]:
        return []


groups_schema = strawberry.federation.Schema(query=GroupsQuery, types=[Group, GroupPerson])


def subgraph_sdls() -> dict[str, str]:
    """The SDL of each subgraph as strawberry's ``_service { sdl }`` returns it."""
    return {"people": people_schema.as_str(), "groups": groups_schema.as_str()}
