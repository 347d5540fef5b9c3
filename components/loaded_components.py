"""The components a loaded Rasa model holds, for code that inspects or adjusts them."""

from __future__ import annotations

from typing import Any


def loaded_components(processor: Any, *types: type) -> dict[str, Any]:  # noqa: ANN401 - rasa MessageProcessor
    """The loaded model's components that are instances of `types`, by graph node name. The graph
    runner holds them; Rasa 3.6 offers no public way to them."""
    return {name: node._component for name, node in processor.graph_runner._instantiated_nodes.items()
            if isinstance(node._component, types)}
