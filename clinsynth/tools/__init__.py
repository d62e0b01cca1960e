"""Tools that agents and host apps call: the host toolkit and its adapters, training, labels.

``as_tools()`` (LangChain tools) and ``ClinsynthToolkit`` are imported lazily, so importing
this package stays cheap.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from clinsynth.tools.adapters import as_tools
    from clinsynth.tools.toolkit import ClinsynthToolkit


def __getattr__(name: str) -> Any:
    if name == "as_tools":
        from clinsynth.tools.adapters import as_tools

        return as_tools
    if name == "ClinsynthToolkit":
        from clinsynth.tools.toolkit import ClinsynthToolkit

        return ClinsynthToolkit
    raise AttributeError(f"module 'clinsynth.tools' has no attribute {name!r}")


__all__ = ["ClinsynthToolkit", "as_tools"]
