"""Canonical tables, code lists and the figures contract."""

from crimeaudit.model.codes import CodeLists, Offence, load_code_lists
from crimeaudit.model.figures import Estimate, Finding
from crimeaudit.model.schema import TABLES, Column, Table

__all__ = [
    "TABLES",
    "CodeLists",
    "Column",
    "Estimate",
    "Finding",
    "Offence",
    "Table",
    "load_code_lists",
]
