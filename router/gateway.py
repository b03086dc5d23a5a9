"""The gateway facade: the one object the HTTP edge and the CLI use.

Pipeline per request: parse (token limit) -> operation limits -> validate against the API schema
(the three cached per document, verdict included) -> pick the operation -> coerce variables ->
plan (LRU-cached) -> introspection answered locally -> execute through the transport -> shape.
Request errors come back as ``{"errors": [...]}`` without ``data``.
"""

from __future__ import annotations

import logging
from collections import OrderedDict
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from graphql import (
    DocumentNode,
    ExecutionResult,
    FieldNode,
    FragmentDefinitionNode,
    FragmentSpreadNode,
    GraphQLError,
    GraphQLSchema,
    InlineFragmentNode,
    OperationDefinitionNode,
    OperationType,
    SelectionSetNode,
    execute,
    print_ast,
    validate,
)
from graphql.execution.values import get_variable_values

from pek.router.executor import Executor
from pek.router.limits import (
    OperationLimits,
    is_token_limit_error,
    parse_limited,
    strip_suggestions,
)
from pek.router.planner import (
    INTROSPECTION_ROOT_FIELDS,
    PlanCache,
    PlanningError,
    QueryPlan,
    QueryPlanner,
    conditional_variables,
    plan_cache_key,
)
from pek.router.supergraph import Supergraph
from pek.router.transport import Transport

JSON = dict[str, Any]
logger = logging.getLogger(__name__)


class GraphQLRequestError(Exception):
    """The request cannot be executed (syntax, validation, operation, variables)."""

    def __init__(self, errors: list[JSON]) -> None:
        super().__init__("; ".join(str(e.get("message")) for e in errors))
        self.errors = errors


@dataclass(frozen=True, slots=True)
class _ParsedDocument:
    document: DocumentNode
    normalized: str
    conditional_vars: tuple[str, ...]


def _error(message: str, code: str, locations: Any = None) -> JSON:
    out: JSON = {"message": message}
    if locations:
        out["locations"] = locations
    out["extensions"] = {"code": code}
    return out


def _formatted(error: GraphQLError, code: str, *, suggestions: bool = True) -> JSON:
    formatted: JSON = {**error.formatted}
    if not suggestions:
        formatted["message"] = strip_suggestions(formatted["message"])
    extensions = dict(formatted.get("extensions") or {})
    extensions.setdefault("code", code)
    formatted["extensions"] = extensions
    return formatted


class Gateway:
    """Plans and executes client operations against a supergraph through a transport."""

    def __init__(
        self,
        supergraph_sdl: str,
        transport: Transport,
        *,
        plan_cache_size: int = 1000,
        introspection: bool = True,
        merge_entity_fetches: bool = True,
        limits: OperationLimits | None = None,
        field_suggestions: bool = True,
        service_names: bool = False,
    ) -> None:
        """``service_names`` adds ``extensions.serviceName`` (the subgraph) to subgraph errors,
        as Apollo Gateway does: development only (``PEK_DEV``), since clients must never see
        the services behind the graph."""
        self.supergraph = Supergraph(supergraph_sdl)
        self.transport = transport
        self.introspection = introspection
        #: Depth, aliases, root fields and tokens a document may have (default: the defaults
        #: of :class:`~pek.settings.Settings`).
        self.limits = limits if limits is not None else OperationLimits()
        #: Keep "Did you mean ...?" in validation and variable errors.
        self.field_suggestions = field_suggestions
        self.planner = QueryPlanner(self.supergraph, merge_entity_fetches=merge_entity_fetches)
        self.executor = Executor(self.supergraph, transport, service_names=service_names)
        self.plan_cache = PlanCache(plan_cache_size)
        self._documents: OrderedDict[str, _ParsedDocument | list[JSON]] = OrderedDict()
        self._documents_max = max(plan_cache_size, 1)

    @property
    def api_schema(self) -> GraphQLSchema:
        """The client-facing schema (no federation machinery, no ``@inaccessible`` elements)."""
        return self.supergraph.api_schema

    def subgraph_urls(self) -> dict[str, str]:
        """Subgraph name -> URL, from ``@join__graph``."""
        return self.supergraph.subgraph_urls()

    # -- request stages ------------------------------------------------------------------------

    def _document(self, query: str) -> _ParsedDocument:
        cached = self._documents.get(query)
        if cached is None:
            cached = self._parse_and_validate(query)
            self._documents[query] = cached
            if len(self._documents) > self._documents_max:
                self._documents.popitem(last=False)
        else:
            self._documents.move_to_end(query)
        if isinstance(cached, list):
            raise GraphQLRequestError(cached)
        return cached

    def _parse_and_validate(self, query: str) -> _ParsedDocument | list[JSON]:
        if not isinstance(query, str) or not query.strip():
            return [_error("The request has no GraphQL query.", "GRAPHQL_PARSE_FAILED")]
        try:
            # the parser stops at the token limit: a huge document is never parsed in full
            document = parse_limited(query, self.limits.parser_max_tokens)
        except GraphQLError as exc:
            if is_token_limit_error(exc.message):
                return [self.limits.too_many_tokens()]
            return [_formatted(exc, "GRAPHQL_PARSE_FAILED")]
        # before validation, whose cost grows with the document's size
        over_limits = self.limits.check(document)
        if over_limits:
            return over_limits
        errors = validate(self.api_schema, document)
        if errors:
            return [
                _formatted(e, "GRAPHQL_VALIDATION_FAILED", suggestions=self.field_suggestions)
                for e in errors
            ]
        return _ParsedDocument(document, print_ast(document), conditional_variables(document))

    @staticmethod
    def _operation(document: DocumentNode, operation_name: str | None) -> OperationDefinitionNode:
        operations = [d for d in document.definitions if isinstance(d, OperationDefinitionNode)]
        if operation_name is None:
            if len(operations) != 1:
                raise GraphQLRequestError(
                    [
                        _error(
                            "Must provide operation name if query contains multiple operations.",
                            "GRAPHQL_VALIDATION_FAILED",
                        )
                    ]
                )
            return operations[0]
        for operation in operations:
            if operation.name and operation.name.value == operation_name:
                return operation
        raise GraphQLRequestError(
            [_error(f"Unknown operation named '{operation_name}'.", "GRAPHQL_VALIDATION_FAILED")]
        )

    def _coerce(self, operation: OperationDefinitionNode, variables: Any) -> dict[str, Any]:
        if variables is None:
            variables = {}
        if not isinstance(variables, dict):
            raise GraphQLRequestError(
                [_error("Variables must be a JSON object.", "BAD_USER_INPUT")]
            )
        coerced = get_variable_values(
            self.api_schema, operation.variable_definitions or (), variables
        )
        if isinstance(coerced, list):
            raise GraphQLRequestError(
                [
                    _formatted(e, "BAD_USER_INPUT", suggestions=self.field_suggestions)
                    for e in coerced
                ]
            )
        # graphql-core 3.3 wraps the values with their sources; 3.2 returns the dict itself
        values: Any = getattr(coerced, "coerced", coerced)
        return dict(values)

    def _check_operation(self, operation: OperationDefinitionNode, document: DocumentNode) -> None:
        if operation.operation == OperationType.SUBSCRIPTION:
            raise GraphQLRequestError(
                [
                    _error(
                        "Subscriptions are not supported by this router.", "OPERATION_NOT_SUPPORTED"
                    )
                ]
            )
        if not self.introspection and _uses_introspection(document):
            raise GraphQLRequestError(
                [
                    _error(
                        "GraphQL introspection is not allowed by this router.",
                        "INTROSPECTION_DISABLED",
                    )
                ]
            )

    def _plan(
        self,
        parsed: _ParsedDocument,
        operation: OperationDefinitionNode,
        operation_name: str | None,
        coerced: Mapping[str, Any],
    ) -> QueryPlan:
        key = plan_cache_key(parsed.normalized, operation_name, parsed.conditional_vars, coerced)
        plan = self.plan_cache.get(key)
        if plan is None:
            try:
                plan = self.planner.plan(parsed.document, operation, coerced)
            except PlanningError as exc:
                raise GraphQLRequestError(
                    [_error(f"Cannot plan the operation: {exc}", "QUERY_PLANNING_FAILED")]
                ) from None
            except Exception as exc:  # a planner defect answers as GraphQL, never a 500
                logger.exception("planning an operation failed")
                raise GraphQLRequestError(
                    [
                        _error(
                            f"Cannot plan the operation (internal {type(exc).__name__}).",
                            "QUERY_PLANNING_FAILED",
                        )
                    ]
                ) from None
            self.plan_cache.put(key, plan)
        return plan

    # -- public API ----------------------------------------------------------------------------

    def plan(
        self, query: str, operation_name: str | None = None, variables: dict[str, Any] | None = None
    ) -> QueryPlan:
        """The plan of an operation; raises :class:`GraphQLRequestError` for a bad request."""
        parsed = self._document(query)
        operation = self._operation(parsed.document, operation_name)
        self._check_operation(operation, parsed.document)
        coerced = self._coerce(operation, variables)
        return self._plan(parsed, operation, operation_name, coerced)

    async def execute(
        self,
        query: str,
        variables: dict[str, Any] | None = None,
        operation_name: str | None = None,
        *,
        headers: Mapping[str, str] | None = None,
        include_plan: bool = False,
    ) -> JSON:
        """Execute one GraphQL request; always returns a GraphQL response, never raises for bad
        client input or failing subgraphs."""
        try:
            parsed = self._document(query)
            operation = self._operation(parsed.document, operation_name)
            self._check_operation(operation, parsed.document)
            coerced = self._coerce(operation, variables)
            plan = self._plan(parsed, operation, operation_name, coerced)
        except GraphQLRequestError as exc:
            return {"errors": exc.errors}
        initial: JSON | None = None
        if plan.has_introspection:
            initial = self._introspect(parsed.document, operation, coerced)
        try:
            response = await self.executor.execute(
                plan,
                variables or {},
                headers=headers,
                initial_data=initial,
                coerced_variables=coerced,
            )
        except Exception as exc:  # a router defect still answers as GraphQL, never a 500
            logger.exception("executing a query plan failed")
            message = f"Internal router error ({type(exc).__name__})."
            return {
                "data": None,
                "errors": [{"message": message, "extensions": {"code": "INTERNAL_SERVER_ERROR"}}],
            }
        if include_plan:
            response.setdefault("extensions", {})["queryPlan"] = plan.to_json()
        return response

    def _introspect(
        self,
        document: DocumentNode,
        operation: OperationDefinitionNode,
        coerced: Mapping[str, Any],
    ) -> JSON:
        """Answer ``__schema``/``__type`` root fields from the API schema with graphql-core."""
        fragments = {
            d.name.value: d for d in document.definitions if isinstance(d, FragmentDefinitionNode)
        }
        only = OperationDefinitionNode(
            operation=operation.operation,
            name=operation.name,
            variable_definitions=operation.variable_definitions,
            directives=operation.directives,
            selection_set=_introspection_only(operation.selection_set, fragments),
        )
        result = execute(
            self.api_schema,
            DocumentNode(definitions=(only, *fragments.values())),
            variable_values=dict(coerced),
        )
        assert isinstance(result, ExecutionResult)
        return result.data or {}

    async def aclose(self) -> None:
        await self.transport.aclose()


def _introspection_only(
    selection_set: SelectionSetNode, fragments: Mapping[str, FragmentDefinitionNode]
) -> SelectionSetNode:
    """The root selections that are ``__schema``/``__type`` fields, fragments included (a
    fragment spread becomes an inline fragment holding only those)."""
    kept: list[Any] = []
    for sel in selection_set.selections:
        if isinstance(sel, FieldNode):
            if sel.name.value in INTROSPECTION_ROOT_FIELDS:
                kept.append(sel)
            continue
        if isinstance(sel, InlineFragmentNode):
            inner = _introspection_only(sel.selection_set, fragments)
            condition, directives = sel.type_condition, sel.directives
        elif isinstance(sel, FragmentSpreadNode) and sel.name.value in fragments:
            fragment = fragments[sel.name.value]
            inner = _introspection_only(fragment.selection_set, fragments)
            condition, directives = fragment.type_condition, sel.directives
        else:
            continue
        if inner.selections:
            kept.append(
                InlineFragmentNode(
                    type_condition=condition, directives=directives, selection_set=inner
                )
            )
    return SelectionSetNode(selections=tuple(kept))


def _uses_introspection(document: DocumentNode) -> bool:
    def walk(selection_set: Any) -> bool:
        if selection_set is None:
            return False
        for sel in selection_set.selections:
            if isinstance(sel, FieldNode) and sel.name.value in INTROSPECTION_ROOT_FIELDS:
                return True
            if walk(getattr(sel, "selection_set", None)):
                return True
        return False

    return any(walk(getattr(d, "selection_set", None)) for d in document.definitions)
