"""Domain errors and exit codes: the one vocabulary the CLI boundary turns into messages.

Every error a user can cause or meet carries a message (what went wrong), a hint (what to run or
change) and an exit code. Library exceptions are translated where they enter our code.
"""

from __future__ import annotations

from enum import IntEnum


class ExitCode(IntEnum):
    OK = 0
    FAILED = 1  # a check failed, a command could not do what was asked
    USAGE = 2  # bad flags, arguments or input files
    UNREACHABLE = 3  # the platform, Prometheus or a proxy cannot be reached
    TIMEOUT = 4
    CONFLICT = 5  # already running, already exists
    INTERRUPTED = 130


class MeshError(Exception):
    """An error with a message a user can act on."""

    exit_code: ExitCode = ExitCode.FAILED

    def __init__(self, message: str, *, hint: str | None = None, exit_code: ExitCode | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint
        if exit_code is not None:
            self.exit_code = exit_code


class UsageError(MeshError):
    exit_code = ExitCode.USAGE


class UnreachableError(MeshError):
    exit_code = ExitCode.UNREACHABLE


class ConflictError(MeshError):
    exit_code = ExitCode.CONFLICT


class MeshTimeoutError(MeshError):
    exit_code = ExitCode.TIMEOUT


class ConfigError(MeshError):
    """A resource or configuration document is invalid."""

    exit_code = ExitCode.USAGE
