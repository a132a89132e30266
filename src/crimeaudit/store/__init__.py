"""The audit project: a folder with the embedded store, its config and its run log."""

from crimeaudit.store.project import (
    Project,
    ProjectConfig,
    ProjectError,
    file_sha256,
    project_verb,
)

__all__ = ["Project", "ProjectConfig", "ProjectError", "file_sha256", "project_verb"]
