"""Differential test: our router against Apollo Gateway 2.14, both in front of the same subgraphs.

Once per module, ``pek hub`` and ``pek realm`` start as real processes on PostgreSQL with demo
data, unchanged (dev mode, so the hub mints a real token for the viewer at ``/auth/dev/token``;
every gateway forwards that bearer token and the subgraphs verify it, so the viewer-only fields
can be compared). In front of them run:

* ``apollo``: Apollo Gateway 2.14 + Apollo Server 5 (``node/gateway.mjs``), which composes the
  supergraph itself with ``@apollo/composition`` from the subgraphs' ``_service { sdl }``;
* ``router``: ``pek router``, composing the supergraph with our own composition;
* ``router-apollo-supergraph``: ``pek router --supergraph`` loading the supergraph Apollo composed.

The realm process serves one realm, ``hub``, at ``/realms/hub/graphql``: that endpoint is "the
realm subgraph" for Apollo Gateway, and the same URL is registered in the hub's realm registry
(``pek realms add``), where our routers' realm-routing layer finds it. So both gateways reach
the very same realm endpoint, ours through its realm routing.

Every operation goes to all three and the answers must be equal: the HTTP status, ``data``
exactly, and ``errors`` (messages, paths, locations, extensions). Requests ask for
``application/graphql-response+json``, where the GraphQL-over-HTTP spec fixes the status codes
(with ``application/json`` Apollo answers 400 to a request error and we answer 200; the spec
allows both there, so it is not compared).

Legitimate differences, and the only normalisation done (see :func:`normalise`):

1. The order of ``errors``: the spec gives none, and parallel fetches may finish in any order.
   Errors are sorted before comparing.
2. Request errors (parse, validation and variable-coercion errors, raised before execution,
   so without ``path``) are worded by the GraphQL library: graphql-js 16 in Apollo, graphql-core
   3.3 in our router, whose wording follows graphql-js 17 (names in single quotes, and new
   phrasing of a few messages). The spec does not fix messages, so those messages are rewritten
   to one canonical wording by the explicit rules of ``_WORDING`` (nothing else is touched: the
   rules match whole messages). Locations, ``extensions.code`` and status are still compared.

3. Cursors of realm connections: our router merges realm instances (realm routing), so its
   cursors are composite (base64url JSON of each realm's own cursor, ``{"hub": "<cursor>"}``).
   With the one realm here, such a cursor is rewritten to the realm's own cursor before
   comparing (so positions are still compared exactly), and a realm cursor sent to our routers
   is wrapped the same way (:func:`ours_cursor`).
4. ``extensions.realm`` on errors from the realm subgraph: our routing layer names the realm
   an error comes from (a merged answer needs it); Apollo knows no realms. It is dropped from
   errors whose ``serviceName`` is ``realm``; everything else in ``extensions`` is compared.
   (``serviceName`` itself is there because the routers run in dev mode: only then do they
   name subgraphs in errors, as Apollo Gateway always does.)
5. An ID our realm-routing layer refuses before any realm sees it (a ``@realmOwner``
   argument) names its argument: ``Invalid ID in argument "id": <reason>``; the realm
   subgraph, which Apollo asks, says ``Invalid ID`` (``Invalid ID: <reason>``). Such a message
   is rewritten to the subgraph's wording (:func:`_canonical_id_message`); path, code and
   ``serviceName`` are still compared.

Errors raised during execution (with a ``path``, from a subgraph or from null propagation) are
compared verbatim, extensions included (but for 4.).

Needs Node 20 and ``npm ci --prefix tests/differential/node``; without them the test fails.
"""

from __future__ import annotations

import asyncio
import json
import re
import shutil
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest

from pek.router.realms.merge import InvalidCursor, decode_cursor, encode_cursor
from pek.schema import ids
from pek.schema.context import NOT_AN_ISSUED_ID
from tests.conftest import create_database, drop_database
from tests.processes import PekProcess, free_port, register_realm

pytestmark = pytest.mark.slow

HERE = Path(__file__).parent
NODE_DIR = HERE / "node"
INSTALL_HINT = (
    "Apollo Gateway is needed for this test: install Node 20+ and run "
    "`npm ci --prefix tests/differential/node` (or `scripts/setup.sh --test`)"
)
NODE_PACKAGES = ("@apollo/gateway", "@apollo/server", "@apollo/composition", "graphql")
GRAPHQL_RESPONSE = "application/graphql-response+json"
#: A demo user who leads groups: with this viewer, scoreboards and full profiles are visible.
VIEWER = ids.encode("User", 1)
#: The realm the realm process hosts (its default), "the realm subgraph" for Apollo.
REALM = "hub"
#: Bearer tokens of viewers, minted by the hub once it runs (viewer User id -> token).
_TOKENS: dict[str, str] = {}
PG = "postgresql+asyncpg://postgres@127.0.0.1:5432/"

JSON = dict[str, Any]


# --- The processes --------------------------------------------------------------------------


def require_node() -> str:
    """The ``node`` executable; fail (never skip) when Node or the packages are missing."""
    node = shutil.which("node")
    if node is None:
        pytest.fail(f"node is not installed. {INSTALL_HINT}")
    version = subprocess.run([node, "--version"], capture_output=True, text=True, check=False)
    match = re.match(r"v(\d+)\.", version.stdout.strip())
    if match is None or int(match.group(1)) < 20:
        pytest.fail(f"Node 20+ is required, found {version.stdout.strip()!r}. {INSTALL_HINT}")
    for package in NODE_PACKAGES:
        if not (NODE_DIR / "node_modules" / package / "package.json").is_file():
            pytest.fail(f"npm package {package} is not installed. {INSTALL_HINT}")
    return node


class NodeGateway:
    """``node gateway.mjs`` as a child process (Apollo Gateway on 127.0.0.1:port)."""

    def __init__(self, node: str, args: list[str], log_path: Path) -> None:
        self.log_path = log_path
        self._log = open(log_path, "wb")  # closed in stop()
        self.process = subprocess.Popen(
            [node, str(NODE_DIR / "gateway.mjs"), *args],
            stdout=self._log, stderr=subprocess.STDOUT, start_new_session=True,
        )

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def wait_ready(self, timeout: float = 90.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise AssertionError(f"gateway.mjs exited early:\n{self.log()}")
            if "ready http" in self.log():
                return
            time.sleep(0.3)
        raise AssertionError(f"gateway.mjs not ready after {timeout}s:\n{self.log()}")

    def stop(self, timeout: float = 15.0) -> int:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self._log.close()
        return self.process.returncode


@pytest.fixture(scope="module")
def endpoints(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, str]]:
    """Start hub, realm, Apollo Gateway and our router (twice); yield name -> GraphQL URL."""
    node = require_node()
    logs = tmp_path_factory.mktemp("differential")
    hub_db = asyncio.run(create_database("pek_diff_hub"))
    realm_db = asyncio.run(create_database("pek_diff_realm"))
    ports = {name: free_port() for name in ("hub", "realm", "apollo", "router", "router2")}
    hub_url = f"http://127.0.0.1:{ports['hub']}/graphql"
    # the one realm this process hosts (its default), at its own endpoint
    realm_url = f"http://127.0.0.1:{ports['realm']}/realms/{REALM}/graphql"
    common = {"PEK_DEV": "true", "PEK_LOG_LEVEL": "warning"}
    supergraph_file = logs / "apollo-supergraph.graphql"
    pek: list[PekProcess] = []
    gateway: NodeGateway | None = None
    try:
        hub = PekProcess(
            ["hub", "--port", str(ports["hub"])],
            {**common, "PEK_DEMO_DATA": "true", "PEK_HUB_DATABASE_URL": PG + hub_db,
             "PEK_KEY_DIR": str(logs / "keys"), "PEK_ACCESS_TOKEN_SECONDS": "7200"},
            logs / "hub.log",
        )
        pek.append(hub)
        hub.wait_healthy(f"http://127.0.0.1:{ports['hub']}/health")
        _TOKENS[VIEWER] = _dev_token(f"http://127.0.0.1:{ports['hub']}", VIEWER)
        realm = PekProcess(
            ["realm", "--port", str(ports["realm"])],
            # the hub's URL: where the realm finds the JWKS to verify viewers' tokens
            {**common, "PEK_DEMO_DATA": "true", "PEK_REALM_DATABASE_URL": PG + realm_db,
             "PEK_HUB_URL": hub_url},
            logs / "realm.log",
        )
        pek.append(realm)
        realm.wait_healthy(f"http://127.0.0.1:{ports['realm']}/health")
        # The hub's demo registered realm `hub` without a URL: the operator's step gives it one.
        register_realm(PG + hub_db, REALM, realm_url, name="Hub")
        gateway = NodeGateway(
            node,
            ["--port", str(ports["apollo"]), "--subgraph", f"hub={hub_url}",
             "--subgraph", f"realm={realm_url}", "--write-supergraph", str(supergraph_file)],
            logs / "apollo.log",
        )
        router = PekProcess(
            ["router", "--port", str(ports["router"]), "--hub-url", hub_url,
             "--realm-url", realm_url],
            common, logs / "router.log",
        )
        pek.append(router)
        gateway.wait_ready()
        router2 = PekProcess(
            ["router", "--port", str(ports["router2"]), "--supergraph", str(supergraph_file)],
            common, logs / "router-apollo-supergraph.log",
        )
        pek.append(router2)
        router.wait_healthy(f"http://127.0.0.1:{ports['router']}/health")
        router2.wait_healthy(f"http://127.0.0.1:{ports['router2']}/health")
        yield {
            "apollo": f"http://127.0.0.1:{ports['apollo']}/",
            "router": f"http://127.0.0.1:{ports['router']}/graphql",
            "router-apollo-supergraph": f"http://127.0.0.1:{ports['router2']}/graphql",
        }
    finally:
        if gateway is not None:
            gateway.stop()
        for process in reversed(pek):
            process.stop()
        asyncio.run(drop_database(hub_db))
        asyncio.run(drop_database(realm_db))


@dataclass(frozen=True)
class Answer:
    status: int
    body: JSON


def post(url: str, query: str, variables: JSON | None = None, viewer: str | None = None,
         operation_name: str | None = None) -> Answer:
    payload: JSON = {"query": query}
    if variables is not None:
        payload["variables"] = variables
    if operation_name is not None:
        payload["operationName"] = operation_name
    headers = {"accept": GRAPHQL_RESPONSE}
    if viewer is not None:
        headers["authorization"] = f"Bearer {_TOKENS[viewer]}"
    response = httpx.post(url, json=payload, headers=headers, timeout=30)
    try:
        body = response.json()
    except ValueError:
        raise AssertionError(
            f"{url} answered {response.status_code} non-JSON: {response.text}"
        ) from None
    assert isinstance(body, dict), body
    return Answer(response.status_code, body)


def _dev_token(hub_base: str, user: str) -> str:
    """A real hub token for ``user`` (the hub runs in dev mode)."""
    response = httpx.post(f"{hub_base}/auth/dev/token", json={"user": user}, timeout=30)
    assert response.status_code == 200, response.text
    token: str = response.json()["access_token"]
    return token


# --- Normalisation (only the documented legitimate differences) ----------------------------

_CURSOR_KEYS = frozenset({"cursor", "startCursor", "endCursor"})


def ours_cursor(realm_cursor: str | None) -> str | None:
    """The cursor our routers give for the realm's own cursor ``realm_cursor`` (see 3.)."""
    return None if realm_cursor is None else encode_cursor({REALM: realm_cursor})


def _realm_cursors(value: Any) -> Any:
    """``value`` with composite one-realm cursors replaced by the realm's own cursor."""
    if isinstance(value, list):
        return [_realm_cursors(v) for v in value]
    if not isinstance(value, dict):
        return value
    out = {}
    for key, item in value.items():
        if key in _CURSOR_KEYS and isinstance(item, str):
            try:
                positions = decode_cursor(item)
            except InvalidCursor:
                positions = {}
            if list(positions) == [REALM]:
                item = positions[REALM]
        out[key] = _realm_cursors(item)
    return out

# (pattern, replacement) on whole messages of request errors. Each pair rewrites one
# graphql-js 16 (Apollo) or graphql-core 3.3 (our router) wording to a shared canonical one.
_WORDING: list[tuple[re.Pattern[str], str]] = [
    # graphql-js 16: Variable "$id" of required type "ID!" was not provided.
    (re.compile(r'^Variable "(\$\w+)" of required type "([^"]+)" was not provided\.$'),
     r'Variable "\1" has invalid value: Expected a value of non-null type "\2" to be provided.'),
    # graphql-js 16 names the rejected value again: ... got invalid value "abc"; <reason>
    (re.compile(r'^Variable "(\$\w+)" got invalid value .*?; (.*)$', re.S),
     r'Variable "\1" has invalid value: \2'),
    # graphql-core 3.3 (graphql-js 17): Argument "Query.group(id:)" of type "ID!" is required...
    (re.compile(r'^Argument "\w+\.(\w+)\((\w+):\)" of type "([^"]+)" is required, but it '
                r'was not provided\.$'),
     r'Field "\1" argument "\2" of type "\3" is required, but it was not provided.'),
]


def _canonical_request_message(message: str) -> str:
    # graphql-core quotes names 'like this' where graphql-js uses "like this".
    message = re.sub(r"'([^'\s]*)'", r'"\1"', message)
    for pattern, replacement in _WORDING:
        if pattern.match(message):
            return pattern.sub(replacement, message)
    return message


_ARGUMENT_ID = re.compile(r'^Invalid ID in argument "[\w.]+": (.*)$', re.S)


def _canonical_id_message(message: str) -> str:
    """The subgraph's wording of an ID error our routing layer names the argument of (5.)."""
    match = _ARGUMENT_ID.match(message)
    if match is None:
        return message
    reason = match.group(1)
    return "Invalid ID" if reason == NOT_AN_ISSUED_ID else f"Invalid ID: {reason}"


def normalise(body: JSON) -> JSON:
    """Sort ``errors``; canonicalise the wording of request errors (those without a path)."""
    result = dict(body)
    if "data" in result:
        result["data"] = _realm_cursors(result["data"])
    errors = body.get("errors")
    if isinstance(errors, list):
        normalised = []
        for error in errors:
            error = dict(error)
            if "path" not in error and isinstance(error.get("message"), str):
                error["message"] = _canonical_request_message(error["message"])
            elif isinstance(error.get("message"), str):
                error["message"] = _canonical_id_message(error["message"])
            extensions = error.get("extensions")
            if isinstance(extensions, dict) and extensions.get("serviceName") == "realm":
                error["extensions"] = {k: v for k, v in extensions.items() if k != "realm"}
            normalised.append(error)
        result["errors"] = sorted(normalised, key=lambda e: json.dumps(e, sort_keys=True))
    return result


# --- The operations -------------------------------------------------------------------------


@dataclass(frozen=True)
class Case:
    query: str
    #: Values "@user", "@group", "@membership", "@other-user" are replaced by demo IDs.
    variables: JSON | None = None
    #: Signed in by default (people's names are for signed-in viewers); None: anonymous.
    viewer: str | None = VIEWER
    operation_name: str | None = None
    #: What the reference (Apollo) must answer, so that equal failures cannot pass unnoticed.
    expect: str = "data"  # "data", "partial" (data and errors), "request-error", "null-data"
    error_codes: tuple[str, ...] = field(default=())
    #: Variables holding a cursor of a realm connection (the realm's own cursor): our routers
    #: get it as their composite cursor (see 3. in the module doc).
    realm_cursors: tuple[str, ...] = field(default=())


CASES: dict[str, Case] = {
    "hub_root_fields": Case("""
      { users(first: 4) { totalCount
          edges { cursor node { id username firstName lastName nickname name avatarUrl } }
          pageInfo { hasNextPage hasPreviousPage startCursor endCursor } }
        realms { id name description } }"""),
    "realm_root_fields": Case("""
      { groups(first: 5) { totalCount
          edges { cursor node { id name description purpose foundedAt webpage mailingList
                               usersCanApply archived parent { id name } } }
          pageInfo { hasNextPage hasPreviousPage startCursor endCursor } }
        semesters { id name startsOn endsOn season } }"""),
    "both_subgraphs_at_the_root": Case("""
      { __typename
        realms { __typename id }
        semesters { __typename name }
        users(first: 2) { __typename totalCount edges { __typename node { __typename name } } }
        groups(first: 2) { __typename totalCount edges { __typename node { __typename name } } }
      }"""),
    "entity_round_trip_groups_to_groups": Case("""
      { groups(first: 4) { edges { node { __typename id name
          memberships { __typename id status
            user { __typename id name nickname
              memberships { __typename status group { __typename id name purpose } } } } } } } }
    """),
    "entity_hop_users_to_realm_and_back": Case("""
      query Users($n: Int!) {
        users(first: $n) { edges { node { name
          memberships { status joinedAt posts { kind title since }
            statusHistory { status since until }
            group { name parent { name parent { name } }
              memberships(status: ACTIVE) { user { username } } } } } } } }""",
        variables={"n": 6}),
    "relay_pagination_variables_and_cursors": Case("""
      query Page($first: Int!, $after: String, $search: String) {
        groups(first: $first, after: $after, search: $search) {
          totalCount edges { cursor node { name } }
          pageInfo { hasNextPage hasPreviousPage startCursor endCursor } } }""",
        variables={"first": 3, "after": "b2Zmc2V0OjE", "search": "kör"},
        realm_cursors=("after",)),
    "aliases": Case("""
      { circles: groups(first: 2, purpose: CIRCLE) { n: totalCount e: edges { g: node {
            title: name kind: purpose up: parent { title: name } } } }
        resorts: groups(first: 2, purpose: RESORT) { n: totalCount e: edges { g: node {
            title: name members: memberships { who: user { display: name
              again: memberships { where: group { title: name } } } } } } }
        people: users(first: 2) { edges { node { n1: name n2: name id } } } }"""),
    "named_and_inline_fragments": Case("""
      query Fragments {
        users(first: 3) { ...UserPage }
        groups(first: 2) { edges { node { ...GroupBits ... on Group { memberships {
          ... on Membership { status user { ...UserBits } } } } } } } }
      fragment UserPage on UserConnection { totalCount edges { node { ...UserBits } } }
      fragment UserBits on User { __typename id name ... on User { memberships {
        ...MembershipBits } } }
      fragment MembershipBits on Membership { __typename status group { ...GroupBits } }
      fragment GroupBits on Group { __typename name purpose }"""),
    "skip_and_include": Case("""
      query Directives($withGroups: Boolean!, $skipRealm: Boolean!, $withTotal: Boolean = true) {
        users(first: 3) {
          totalCount @include(if: $withTotal)
          edges { node { name
            memberships @skip(if: $skipRealm) { status }
            ... on User @include(if: $withGroups) { memberships { group { name } } } } } }
        groups(first: 2) @include(if: $withGroups) { edges { node { name } } }
        realms @skip(if: true) { id } }""",
        variables={"withGroups": True, "skipRealm": True}),
    "nested_lists": Case("""
      { groups(first: 3, purpose: RESORT) { edges { node { name
          children { name children { name memberships { status posts { kind } } } }
          memberships { statusHistory { status since until } } } } } }"""),
    "scoreboard_with_viewer": Case("""
      query Scores($semester: String!) {
        groups(first: 4) { edges { node { name scoreboard(semester: $semester) {
          __typename semester { name season } pointStatus entryStatus explanation
          guidelines { name category maxPerMember }
          rows { work responsibility total
            user { __typename name fullProfile { email dormitory } }
            membership { status group { name } }
            points { guideline { name category } points counted } }
          entryRequests { card justification user { name } membership { status } } } } } } }""",
        variables={"semester": "2024-2025/2"}, viewer=VIEWER),
    "scoreboard_anonymous_is_null": Case("""
      { groups(first: 2) { edges { node { name scoreboard(semester: "2024-2025/2") {
          total: pointStatus } } } } }""", viewer=None),
    "anonymous_sees_no_names_and_lists_no_people": Case("""
      { groups(first: 2) { edges { node { name memberships { user { id name username } } } } }
        users(first: 2) { totalCount } }""",
        viewer=None, expect="partial", error_codes=("UNAUTHENTICATED",)),
    "lookups_by_id": Case("""
      query Lookups($user: ID!, $group: ID!, $membership: ID!) {
        user(id: $user) { __typename id name memberships { group { id name } } }
        group(id: $group) { __typename id name parent { id } memberships { user { id name } } }
        membership(id: $membership) { __typename id status user { id name } group { id } } }""",
        variables={"user": "@user", "group": "@group", "membership": "@membership"}),
    "viewer_fields": Case("""
      query Viewer($other: ID!) {
        me { name fullProfile { email cellPhone roomNumber dormitory gender dateOfBirth
             homeAddress webpage studentStatus externalAccounts { protocol accountName } }
             privacySettings { attribute visible } memberships { status } }
        other: user(id: $other) { name privacySettings { attribute }
          fullProfile { dormitory } } }""",
        variables={"other": "@other-user"}, viewer=VIEWER),
    "forged_ids": Case("""
      query Forged($wrongType: ID!) {
        group(id: "Zm9yZ2Vk") { name }
        user(id: "not base64 at all") { name }
        membership(id: $wrongType) { id }
        realms { id } }""",
        variables={"wrongType": "@group"}, expect="partial",
        error_codes=("BAD_USER_INPUT",)),
    "error_path_inside_entity_fetch": Case("""
      { users(first: 3) { edges { node { name memberships { group { name
          scoreboard(semester: "autumn") { pointStatus } } } } } } }""",
        viewer=VIEWER, expect="partial", error_codes=("BAD_USER_INPUT",)),
    "error_paths_of_repeated_entities": Case("""
      { groups(first: 2) { edges { node { memberships { user { memberships { group {
          name scoreboard(semester: "bad") { pointStatus } } } } } } } } }""",
        viewer=VIEWER, expect="partial", error_codes=("BAD_USER_INPUT",)),
    "unknown_ids_are_null_without_error": Case("""
      { group(id: "R3JvdXA6aHViOjk5OTk") { name } user(id: "VXNlcjo6OTk5OTk") { name }
        membership(id: "TWVtYmVyc2hpcDpodWI6OTk5OTk") { id } }"""),
    "empty_pages_and_typename_only_entities": Case("""
      { none: users(first: 0) { totalCount edges { node { name } }
          pageInfo { startCursor endCursor hasNextPage hasPreviousPage } }
        nobody: users(first: 3, search: "zzzzzz") { totalCount edges { node { name } } }
        users(first: 2) { edges { node { memberships { __typename } } } } }"""),
    "null_propagated_from_non_null_root_field": Case("""
      { semesters { name } groups(first: -1) { totalCount } }""",
        expect="null-data", error_codes=("BAD_USER_INPUT",)),
    "null_propagated_across_subgraphs": Case("""
      { realms { id } groups(first: -1) { totalCount } }""",
        expect="null-data", error_codes=("BAD_USER_INPUT",)),
    "null_propagated_invalid_cursor_variable": Case("""
      query($after: String) { semesters { name } groups(first: 2, after: $after) { totalCount } }
    """, variables={"after": "garbage"}, expect="null-data", error_codes=("BAD_USER_INPUT",)),
    "validation_error_wrong_argument_type": Case("""
      { users(first: "many") { totalCount } }""",
        expect="request-error", error_codes=("GRAPHQL_VALIDATION_FAILED",)),
    "validation_error_missing_argument": Case("""
      { group { name } }""",
        expect="request-error", error_codes=("GRAPHQL_VALIDATION_FAILED",)),
    "unknown_field": Case("""
      { groups(first: 1) { edges { node { name nope } } } }""",
        expect="request-error", error_codes=("GRAPHQL_VALIDATION_FAILED",)),
    "unknown_field_on_entity_of_other_subgraph": Case("""
      { users(first: 1) { edges { node { name scoreboard } } } }""",
        expect="request-error", error_codes=("GRAPHQL_VALIDATION_FAILED",)),
    "syntax_error": Case("""{ users(first: 1) { totalCount """,
        expect="request-error", error_codes=("GRAPHQL_PARSE_FAILED",)),
    "variable_errors": Case("""
      query($id: ID!, $p: GroupPurpose) { group(id: $id) { name } groups(purpose: $p) {
        totalCount } }""",
        variables={"p": "NOPE"}, expect="request-error", error_codes=("BAD_USER_INPUT",)),
    "operation_name_picks_one": Case("""
      query A { realms { id } } query B { semesters { name } groups(first: 1) { totalCount } }""",
        operation_name="B"),
    "introspection_of_a_federated_type": Case("""
      { __type(name: "User") { name kind fields { name type { kind name ofType { name } } } } }
    """),
}


@pytest.fixture(scope="module")
def demo_ids(endpoints: dict[str, str]) -> dict[str, str]:
    """IDs of demo objects, read through Apollo (the reference)."""
    answer = post(endpoints["apollo"], """
      { groups(first: 10, purpose: CIRCLE) { edges { node { id parent { id }
          memberships { id user { id } } } } }
        users(first: 2) { edges { node { id } } } }""", viewer=VIEWER)
    assert answer.status == 200 and "errors" not in answer.body, answer.body
    groups = [e["node"] for e in answer.body["data"]["groups"]["edges"]]
    group = next(g for g in groups if g["parent"] and g["memberships"])
    users = [e["node"]["id"] for e in answer.body["data"]["users"]["edges"]]
    return {
        "group": group["id"],
        "membership": group["memberships"][0]["id"],
        "user": group["memberships"][0]["user"]["id"],
        "other-user": users[1] if users[0] != group["memberships"][0]["user"]["id"] else users[0],
    }


def _resolve(variables: JSON | None, ids: dict[str, str]) -> JSON | None:
    if variables is None:
        return None
    return {k: ids[v[1:]] if isinstance(v, str) and v.startswith("@") else v
            for k, v in variables.items()}


def _check_reference(name: str, case: Case, answer: Answer) -> None:
    """Apollo's answer has the shape the case is about (else the case tests nothing)."""
    body = answer.body
    codes = {e.get("extensions", {}).get("code") for e in body.get("errors", [])}
    where = f"{name}: Apollo answered {answer.status} {json.dumps(body, ensure_ascii=False)}"
    if case.expect == "data":
        assert answer.status == 200 and "errors" not in body and body.get("data"), where
    elif case.expect == "partial":
        assert answer.status == 200 and body.get("data") and body.get("errors"), where
    elif case.expect == "null-data":
        assert answer.status == 200 and body.get("data", "absent") is None, where
        assert body.get("errors"), where
    else:
        assert "data" not in body and body.get("errors") and answer.status >= 400, where
    assert codes >= set(case.error_codes), where


def test_at_least_fifteen_operations() -> None:
    assert len(CASES) >= 15


@pytest.mark.parametrize("target", ["router", "router-apollo-supergraph"])
@pytest.mark.parametrize("name", list(CASES))
def test_same_answer_as_apollo_gateway(
    endpoints: dict[str, str], demo_ids: dict[str, str], name: str, target: str
) -> None:
    case = CASES[name]
    variables = _resolve(case.variables, demo_ids)
    reference = post(endpoints["apollo"], case.query, variables, case.viewer, case.operation_name)
    _check_reference(name, case, reference)
    if variables is not None and case.realm_cursors:
        variables = {k: ours_cursor(v) if k in case.realm_cursors else v
                     for k, v in variables.items()}
    ours = post(endpoints[target], case.query, variables, case.viewer, case.operation_name)
    assert ours.status == reference.status, (
        f"HTTP status: {target} {ours.status}, Apollo {reference.status}\n"
        f"{target}: {ours.body}\nApollo: {reference.body}"
    )
    assert normalise(ours.body) == normalise(reference.body)


@pytest.mark.parametrize("target", ["router", "router-apollo-supergraph"])
def test_walking_every_page_gives_the_same_pages(endpoints: dict[str, str], target: str) -> None:
    """Follow ``endCursor`` through every page of groups and users; each page must be equal.

    Both connections move by the same offset (``users`` is the hub's, ``groups`` the realm's:
    our routers get the latter as their composite cursor)."""
    query = """
      query Walk($first: Int!, $after: String, $usersAfter: String) {
        groups(first: $first, after: $after) { totalCount edges { cursor node { id name } }
          pageInfo { hasNextPage endCursor } }
        users(first: $first, after: $usersAfter) { edges { node { id } }
          pageInfo { hasNextPage } } }"""
    after: str | None = None
    seen: list[str] = []
    total = None
    for _ in range(100):
        variables = {"first": 7, "after": after, "usersAfter": after}
        reference = post(endpoints["apollo"], query, variables, VIEWER)
        ours = post(endpoints[target], query, {**variables, "after": ours_cursor(after)}, VIEWER)
        assert "errors" not in reference.body, reference.body
        assert normalise(ours.body) == normalise(reference.body), f"page after {after!r}"
        groups = reference.body["data"]["groups"]
        total = groups["totalCount"]
        seen.extend(edge["node"]["id"] for edge in groups["edges"])
        if not groups["pageInfo"]["hasNextPage"]:
            break
        after = groups["pageInfo"]["endCursor"]
    assert total is not None and total > 7, "the demo data has several pages of groups"
    assert len(seen) == total == len(set(seen))


_TYPE_REF = "kind name ofType { kind name ofType { kind name ofType { kind name } } }"
SPECIFIED_DIRECTIVES = frozenset({"include", "skip", "deprecated", "specifiedBy", "oneOf"})
API_SCHEMA_QUERY = f"""
  {{ __schema {{
      queryType {{ name }} mutationType {{ name }} subscriptionType {{ name }}
      directives {{ name isRepeatable args {{ name defaultValue type {{ {_TYPE_REF} }} }} }}
      types {{ kind name description specifiedByURL
        fields(includeDeprecated: true) {{ name description isDeprecated deprecationReason
          args {{ name description defaultValue type {{ {_TYPE_REF} }} }}
          type {{ {_TYPE_REF} }} }}
        interfaces {{ name }} possibleTypes {{ name }}
        enumValues(includeDeprecated: true) {{ name description isDeprecated }}
        inputFields {{ name defaultValue type {{ {_TYPE_REF} }} }} }} }} }}"""


@pytest.mark.parametrize("target", ["router", "router-apollo-supergraph"])
def test_same_api_schema_by_introspection(endpoints: dict[str, str], target: str) -> None:
    """The clients' schema is the same, types in the same order.

    The introspection meta-types (``__Schema``, ``__Type``...) and the definitions of the
    built-in directives come from the GraphQL library: graphql-core 3.3 follows the newer spec
    (``includeDeprecated: Boolean!``, ``@deprecated(reason: String!)``), graphql-js 16 the
    older one. So the meta-types are left out and built-in directives are compared by name;
    every type of our schema and any other directive are compared in full.
    """
    def api(url: str) -> JSON:
        answer = post(url, API_SCHEMA_QUERY)
        assert answer.status == 200 and "errors" not in answer.body, answer.body
        schema: JSON = answer.body["data"]["__schema"]
        schema["types"] = [t for t in schema["types"] if not t["name"].startswith("__")]
        schema["directives"] = [
            {"name": d["name"]} if d["name"] in SPECIFIED_DIRECTIVES else d
            for d in schema["directives"]
        ]
        return schema

    reference = api(endpoints["apollo"])
    assert {"Query", "User", "Group", "Membership", "Scoreboard"} <= {
        t["name"] for t in reference["types"]}
    ours = api(endpoints[target])
    assert ours["types"] == reference["types"]
    assert ours == reference


def test_normalise_only_rewrites_request_error_wording() -> None:
    apollo = {"errors": [
        {"message": 'Variable "$id" of required type "ID!" was not provided.'},
        {"message": 'Field "group" argument "id" of type "ID!" is required, but it was not '
                    'provided.'},
        {"message": "Invalid 'ID'", "path": ["group"]},
    ]}
    ours = {"errors": [
        {"message": "Argument 'Query.group(id:)' of type 'ID!' is required, but it was not "
                    "provided."},
        {"message": "Variable '$id' has invalid value: Expected a value of non-null type 'ID!' "
                    "to be provided."},
        {"message": "Invalid 'ID'", "path": ["group"]},
    ]}
    assert normalise(ours) == normalise(apollo)
    # An execution error (with a path) is compared verbatim: its quotes are not touched.
    assert normalise({"errors": [{"message": "Invalid 'ID'", "path": ["group"]}]}) != normalise(
        {"errors": [{"message": 'Invalid "ID"', "path": ["group"]}]})


def test_normalise_rewrites_only_argument_named_id_errors() -> None:
    ours = {"errors": [
        {"message": 'Invalid ID in argument "id": it is not an ID this federation issued',
         "path": ["group"]},
        {"message": 'Invalid ID in argument "groupId": it does not name an object of a realm',
         "path": ["addGuideline"]},
    ]}
    subgraph = {"errors": [
        {"message": "Invalid ID", "path": ["group"]},
        {"message": "Invalid ID: it does not name an object of a realm",
         "path": ["addGuideline"]},
    ]}
    assert normalise(ours) == normalise(subgraph)
    # the reason is still compared, and only this message shape is rewritten
    assert normalise({"errors": [{"message": 'Invalid ID in argument "id": something else',
                                  "path": ["group"]}]}) != normalise(
        {"errors": [{"message": "Invalid ID", "path": ["group"]}]})
    other = {"errors": [{"message": 'Invalid ID in "id"', "path": ["group"]}]}
    assert normalise(other) == other
