"""Tools: run files, fine-tuning, label correction, and the core as tools for host apps.

``as_tools()`` (LangChain tools) and ``ClinsynthToolkit`` are imported lazily, so importing
this package stays cheap.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from clinsynth.tools.host import ClinsynthToolkit, as_tools


def __getattr__(name: str) -> Any:
    if name in ("as_tools", "ClinsynthToolkit"):
        from clinsynth.tools import host

        return getattr(host, name)
    raise AttributeError(f"module 'clinsynth.tools' has no attribute {name!r}")


__all__ = ["ClinsynthToolkit", "as_tools"]
