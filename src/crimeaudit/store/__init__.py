"""The audit project: a folder with the embedded store, its config and its run log."""

from crimeaudit.store.files import WriteError
from crimeaudit.store.lock import ProjectBusyError, ProjectNotWritableError
from crimeaudit.store.project import (
    Project,
    ProjectConfig,
    ProjectError,
    ProjectWarning,
    file_sha256,
    project_verb,
)

__all__ = ["Project", "ProjectBusyError", "ProjectConfig", "ProjectError",
           "ProjectNotWritableError", "ProjectWarning", "WriteError", "file_sha256",
           "project_verb"]
