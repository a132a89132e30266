"""Link incidents to crime records: exact on references, probabilistic (Splink) for the rest.

Public API: :func:`link` (writes table ``links``), :class:`LinkSettings`, :func:`link_quality`.
"""

from __future__ import annotations

from crimeaudit.linkage.links import LinkSettings, link, link_quality

__all__ = ["LinkSettings", "link", "link_quality"]
