"""Link incidents to crime records: exact on references, probabilistic (Splink) for the rest.

Public API: :func:`link` (writes table ``links``), :class:`LinkSettings`, :func:`link_quality`,
and :func:`linked_pairs`, the one definition of "linked" every later stage reads.
"""

from __future__ import annotations

from crimeaudit.linkage.links import LinkSettings, link, link_quality
from crimeaudit.linkage.pairs import exact_pairs, link_counts, linked_pairs

__all__ = ["LinkSettings", "exact_pairs", "link", "link_counts", "link_quality", "linked_pairs"]
