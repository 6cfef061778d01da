"""The homepage's query limits: depth and aliases, counted in one pass however fragments are spread.

Strawberry's own depth and alias rules follow every fragment spread anew: a fragment that spreads the next
one twice, thirty deep, is a few hundred tokens and 2^30 steps of validation on the event loop. Here each
fragment is counted once and its count reused, so the work grows with the document, not with what it
would expand to. The counts are the same (an alias inside a fragment counts once for each spread of it),
and so are the messages.
"""
from __future__ import annotations

from collections.abc import Callable
from typing import Any

from graphql import (
    FieldNode,
    FragmentDefinitionNode,
    FragmentSpreadNode,
    GraphQLError,
    InlineFragmentNode,
    OperationDefinitionNode,
    SelectionSetNode,
    ValidationContext,
    ValidationRule,
)


class Measure:
    """How deep a selection set reaches and how many aliases it holds, each fragment measured once."""

    def __init__(self, fragments: dict[str, FragmentDefinitionNode]):
        self.fragments = fragments
        self.levels: dict[str, int] = {}
        self.aliases: dict[str, int] = {}

    def depth(self, selections: SelectionSetNode | None) -> int:
        """The levels of selections below and including this set (a field with a set adds one)."""
        return max((self._depth(s) for s in selections.selections), default=0) if selections else 0

    def _depth(self, node: Any) -> int:
        if isinstance(node, FieldNode):
            if node.name.value.startswith("__") or node.selection_set is None:
                return 1  # introspection is not limited here (its own answer is the schema, bounded by tokens)
            return 1 + self.depth(node.selection_set)
        if isinstance(node, InlineFragmentNode):
            return self.depth(node.selection_set)
        return self._fragment(node, self.levels, self.depth, 1)

    def alias_count(self, selections: SelectionSetNode | None) -> int:
        """Aliases in this set, a fragment's counted again at each spread."""
        return sum(self._aliases(s) for s in selections.selections) if selections else 0

    def _aliases(self, node: Any) -> int:
        if isinstance(node, FieldNode):
            return (node.alias is not None) + self.alias_count(node.selection_set)
        if isinstance(node, InlineFragmentNode):
            return self.alias_count(node.selection_set)
        return self._fragment(node, self.aliases, self.alias_count, 0)

    def _fragment(self, spread: FragmentSpreadNode, memo: dict[str, int],
                  measure: Callable[[SelectionSetNode | None], int], unknown: int) -> int:
        """A spread's measure, from the memo; an unknown fragment or a cycle (both refused by the standard
        rules) counts as `unknown`."""
        name = spread.name.value
        fragment = self.fragments.get(name)
        if fragment is None:
            return unknown
        if name not in memo:
            memo[name] = unknown  # while it is measured: a cycle back to it stops here
            memo[name] = measure(fragment.selection_set)
        return memo[name]


def query_limits(max_depth: int, max_aliases: int) -> type[ValidationRule]:
    """A validation rule refusing an operation nested deeper than `max_depth` (root fields at depth 0) or a
    document with more than `max_aliases` aliases."""

    class QueryLimits(ValidationRule):
        def __init__(self, context: ValidationContext) -> None:
            super().__init__(context)
            definitions = context.document.definitions
            measure = Measure({d.name.value: d for d in definitions if isinstance(d, FragmentDefinitionNode)})
            operations = [d for d in definitions if isinstance(d, OperationDefinitionNode)]
            for operation in operations:
                if measure.depth(operation.selection_set) - 1 > max_depth:
                    name = operation.name.value if operation.name else "anonymous"
                    context.report_error(GraphQLError(
                        f"'{name}' exceeds maximum operation depth of {max_depth}", [operation]))
            aliases = sum(measure.alias_count(operation.selection_set) for operation in operations)
            if aliases > max_aliases:
                context.report_error(GraphQLError(f"{aliases} aliases found. Allowed: {max_aliases}"))

    return QueryLimits
