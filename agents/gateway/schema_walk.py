"""One walk over the JSON Schemas pydantic writes; a leaf policy decides the values it puts down."""

from __future__ import annotations

from typing import Any, Protocol

Schema = dict[str, Any]


class LeafPolicy(Protocol):
    """The choices a schema leaves open: which enum value, how many array items, which scalar."""

    def pick(self, values: list[Any]) -> Any: ...

    def count(self, node: Schema) -> int: ...

    def scalar(self, kind: str, node: Schema) -> Any: ...


def walk(root: Schema, policy: LeafPolicy, node: Schema | None = None) -> Any:
    """A value shaped like `node` (default: the root), resolving `$ref` against the root's `$defs`.

    Unions take their first non-null branch (`X | None` yields an X) and `allOf` its first part:
    pydantic writes `allOf` around a single `$ref`, so that part is the whole type.
    """
    node = root if node is None else node
    if "$ref" in node:
        return walk(root, policy, root.get("$defs", {})[node["$ref"].rsplit("/", 1)[-1]])
    if "const" in node:
        return node["const"]
    if "enum" in node:
        return policy.pick(node["enum"])
    for combinator in ("anyOf", "oneOf", "allOf"):
        if combinator in node:
            options = [o for o in node[combinator] if o.get("type") != "null"] or node[combinator]
            return walk(root, policy, options[0])
    kind = node.get("type", "string")
    if kind == "object":
        return {name: walk(root, policy, sub) for name, sub in node.get("properties", {}).items()}
    if kind == "array":
        return [walk(root, policy, node.get("items", {})) for _ in range(policy.count(node))]
    if kind == "null":
        return None
    return policy.scalar(kind, node)
