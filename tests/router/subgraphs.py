"""Small real Federation v2 subgraphs (strawberry) for the router tests.

accounts: User (key id), Query.me/users/user, Mutation.createUser/renameUser (an ordered log)
products: Product (key upc), interface Merch (Product, Furniture), Query.topProducts/matrix/merch
reviews:  Review (key id), extends User (reviews; username external, provided by Review.author)
          and Product (reviews); union FeedItem = Review | Product; Query.review/feed
inventory: extends Product with inStock and shippingEstimate @requires(fields: "price weight")
"""

from __future__ import annotations

import json
import subprocess
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Any

import strawberry
from graphql import GraphQLError

from pek.router.transport import SubgraphRequest

NODE_DIR = Path(__file__).parent / "node"
SUPERGRAPH_FILE = Path(__file__).parent / "supergraph.graphql"

USERS = {
    "1": {"name": "Ada Lovelace", "username": "ada"},
    "2": {"name": "Alan Turing", "username": "alan"},
    "3": {"name": "Grace Hopper", "username": "grace"},
    "4": {"name": None, "username": "broken"},  # name resolver fails for this one
}
PRODUCTS = {
    "p1": {"name": "Table", "price": 100, "weight": 10},
    "p2": {"name": "Couch", "price": 1000, "weight": 50},
    "p3": {"name": "Chair", "price": 50, "weight": 5},
}
REVIEWS = {
    "r1": {"body": "Love it", "author": "1", "product": "p1"},
    "r2": {"body": "Too heavy", "author": "2", "product": "p2"},
    "r3": {"body": "Comfy", "author": "1", "product": "p2"},
    "r4": {"body": "Mystery", "author": "4", "product": "p3"},
}


# -- accounts ------------------------------------------------------------------------------

MUTATION_LOG: list[str] = []


@strawberry.federation.type(keys=["id"])
class User:
    id: strawberry.ID
    username: str | None = strawberry.federation.field(shareable=True, default=None)

    @strawberry.field
    def name(self) -> str:
        value = USERS[str(self.id)]["name"]
        if value is None:
            raise GraphQLError("name is unavailable for this user")
        return value

    @classmethod
    def resolve_reference(cls, id: strawberry.ID, **_: Any) -> User | None:
        if str(id) not in USERS:
            return None
        return User(id=id, username=USERS[str(id)]["username"])


@strawberry.type
class AccountsQuery:
    @strawberry.field
    def me(self) -> User:
        return User(id=strawberry.ID("1"), username="ada")

    @strawberry.field
    def users(self) -> list[User]:
        return [User(id=strawberry.ID(k), username=v["username"]) for k, v in USERS.items()]

    @strawberry.field
    def user(self, id: strawberry.ID) -> User | None:
        return User.resolve_reference(id)


@strawberry.type
class AccountsMutation:
    @strawberry.mutation
    def create_user(self, name: str) -> User:
        new_id = f"new{len(MUTATION_LOG)}"
        MUTATION_LOG.append(f"create:{name}")
        USERS[new_id] = {"name": name, "username": name.lower()}
        return User(id=strawberry.ID(new_id), username=name.lower())

    @strawberry.mutation
    def log_size(self) -> int:
        return len(MUTATION_LOG)


accounts_schema = strawberry.federation.Schema(query=AccountsQuery, mutation=AccountsMutation)


# -- products ------------------------------------------------------------------------------


@strawberry.interface
class Merch:
    upc: str
    name: str | None


@strawberry.federation.type(keys=["upc"])
class Product(Merch):
    price: int | None = None
    weight: int | None = None

    @classmethod
    def resolve_reference(cls, upc: str, **_: Any) -> Product | None:
        data = PRODUCTS.get(upc)
        if data is None:
            return None
        return Product(upc=upc, name=data["name"], price=data["price"], weight=data["weight"])


@strawberry.federation.type(keys=["upc"])
class Furniture(Merch):
    material: str

    @classmethod
    def resolve_reference(cls, upc: str, **_: Any) -> Furniture:
        return Furniture(upc=upc, name="Lamp", material="brass")


@strawberry.type
class ProductsQuery:
    @strawberry.field
    def top_products(self, first: int = 5) -> list[Product]:
        products = [Product.resolve_reference(upc) for upc in PRODUCTS]
        return [p for p in products if p is not None][:first]

    @strawberry.field
    def matrix(self) -> list[list[Product | None]]:
        p = [Product.resolve_reference(upc) for upc in ("p1", "p2", "p3")]
        return [[p[0], p[1]], [p[2], None], []]

    @strawberry.field
    def merch(self) -> list[Merch]:
        return [Product.resolve_reference("p1"), Furniture(upc="f1", name="Lamp", material="brass")]  # type: ignore[list-item]


@strawberry.type
class ProductsMutation:
    @strawberry.mutation
    def add_product(self, upc: str, name: str) -> Product:
        MUTATION_LOG.append(f"product:{upc}")
        PRODUCTS.setdefault(upc, {"name": name, "price": 1, "weight": 1})
        return Product(upc=upc, name=name, price=1, weight=1)


products_schema = strawberry.federation.Schema(
    query=ProductsQuery, mutation=ProductsMutation, types=[Furniture]
)


# -- reviews -------------------------------------------------------------------------------


@strawberry.federation.type(keys=["id"], name="User")
class ReviewsUser:
    id: strawberry.ID
    username: str | None = strawberry.federation.field(external=True, default=None)

    @strawberry.field
    def reviews(self) -> list[Review]:
        return [_review(k) for k, v in REVIEWS.items() if v["author"] == str(self.id)]

    @classmethod
    def resolve_reference(cls, id: strawberry.ID, **_: Any) -> ReviewsUser:
        return ReviewsUser(id=id)


@strawberry.federation.type(keys=["upc"], name="Product")
class ReviewsProduct:
    upc: str

    @strawberry.field
    def reviews(self) -> list[Review]:
        return [_review(k) for k, v in REVIEWS.items() if v["product"] == self.upc]

    @classmethod
    def resolve_reference(cls, upc: str, **_: Any) -> ReviewsProduct:
        return ReviewsProduct(upc=upc)


@strawberry.federation.type(keys=["id"])
class Review:
    id: strawberry.ID
    body: str
    author_id: strawberry.Private[str]
    product_upc: strawberry.Private[str]

    @strawberry.federation.field(provides=["username"])
    def author(self) -> ReviewsUser | None:
        return ReviewsUser(
            id=strawberry.ID(self.author_id), username=USERS[self.author_id]["username"]
        )

    @strawberry.field
    def product(self) -> ReviewsProduct:
        return ReviewsProduct(upc=self.product_upc)

    @classmethod
    def resolve_reference(cls, id: strawberry.ID, **_: Any) -> Review:
        return _review(str(id))


def _review(key: str) -> Review:
    data = REVIEWS[key]
    return Review(
        id=strawberry.ID(key),
        body=data["body"],
        author_id=data["author"],
        product_upc=data["product"],
    )


FeedItem = Annotated[Review | ReviewsProduct, strawberry.union("FeedItem")]


@strawberry.type
class ReviewsQuery:
    @strawberry.field
    def review(self, id: strawberry.ID) -> Review | None:
        return _review(str(id)) if str(id) in REVIEWS else None

    @strawberry.field
    def feed(self) -> list[FeedItem]:
        return [_review("r1"), ReviewsProduct(upc="p3"), _review("r2")]


reviews_schema = strawberry.federation.Schema(query=ReviewsQuery, types=[ReviewsUser])


# -- inventory -----------------------------------------------------------------------------


@strawberry.federation.type(keys=["upc"], name="Product")
class InventoryProduct:
    upc: str
    price: int | None = strawberry.federation.field(external=True, default=None)
    weight: int | None = strawberry.federation.field(external=True, default=None)

    @strawberry.field
    def in_stock(self) -> bool:
        return self.upc != "p2"

    @strawberry.federation.field(requires=["price weight"])
    def shipping_estimate(self) -> int | None:
        if self.price is None or self.weight is None:
            return None
        return 0 if self.price > 500 else self.weight // 2

    @classmethod
    def resolve_reference(
        cls, upc: str, price: int | None = None, weight: int | None = None, **_: Any
    ) -> InventoryProduct:
        return InventoryProduct(upc=upc, price=price, weight=weight)


@strawberry.type
class InventoryQuery:
    @strawberry.field
    def warehouse_name(self) -> str:
        return "Main"


inventory_schema = strawberry.federation.Schema(query=InventoryQuery, types=[InventoryProduct])

SCHEMAS: dict[str, strawberry.federation.Schema] = {
    "accounts": accounts_schema,
    "products": products_schema,
    "reviews": reviews_schema,
    "inventory": inventory_schema,
}


# -- in-process subgraphs that record what they receive --------------------------------------


@dataclass
class RecordingSubgraph:
    """A LocalSubgraph over a strawberry schema that records every request it receives."""

    schema: strawberry.federation.Schema
    requests: list[SubgraphRequest] = field(default_factory=list)
    down: bool = False

    async def execute(self, request: SubgraphRequest) -> dict[str, Any]:
        from pek.router.transport import SubgraphUnavailable

        self.requests.append(request)
        if self.down:
            raise SubgraphUnavailable("?", "connection refused (test)")
        # a copy, as over HTTP: strawberry pops __typename from representations it receives
        variables = json.loads(json.dumps(dict(request.variables or {})))
        result = await self.schema.execute(
            request.query,
            variable_values=variables,
            operation_name=request.operation_name,
        )
        response: dict[str, Any] = {"data": result.data}
        if result.errors:
            response["errors"] = [e.formatted for e in result.errors]
        return response


def subgraph_sdl(name: str) -> str:
    result = SCHEMAS[name].execute_sync("{ _service { sdl } }")
    assert result.data is not None, result.errors
    sdl: str = result.data["_service"]["sdl"]
    return sdl


def compose(services: Mapping[str, str]) -> str:
    """Compose SDLs with Apollo's composition (npm, tests/router/node)."""
    payload = [
        {"name": n, "url": f"http://{n}.test/graphql", "sdl": s} for n, s in services.items()
    ]
    proc = subprocess.run(
        ["node", str(NODE_DIR / "compose.mjs")],
        input=json.dumps(payload),
        capture_output=True,
        text=True,
        check=False,
        timeout=60,
    )
    if proc.returncode != 0:
        raise RuntimeError(f"composition failed: {proc.stderr}")
    return proc.stdout


def supergraph_sdl() -> str:
    """The composed supergraph of the test subgraphs (fresh when node_modules is installed)."""
    if (NODE_DIR / "node_modules" / "@apollo" / "composition").is_dir():
        sdl = compose({name: subgraph_sdl(name) for name in SCHEMAS})
        if not SUPERGRAPH_FILE.exists() or SUPERGRAPH_FILE.read_text() != sdl:
            SUPERGRAPH_FILE.write_text(sdl)
        return sdl
    return SUPERGRAPH_FILE.read_text()
