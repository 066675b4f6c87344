"""The one user-facing error type.

Every mistake a user can make (bad input, a clash with existing files, a model that does not match its
export) is raised as :class:`TritonRepoError`; the CLI formats it on one line in one place
(:func:`tritonrepo.cli._cli_utils.run_command`) and exits with status 2 (usage/I-O) or 1 (a check
failed). Anything else is a bug and keeps its traceback.
"""

from __future__ import annotations


class TritonRepoError(Exception):
    """A problem the user can fix.

    Args:
        message: what went wrong and where (``path:line:col`` when known).
        hint: how to fix it, shown after the message.
        exit_code: process exit status for the CLI: 2 for usage/I-O errors, 1 for failed checks
            (parity over tolerance, server refused the repository).
    """

    def __init__(self, message: str, hint: str | None = None, exit_code: int = 2) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint
        self.exit_code = exit_code

    def one_line(self) -> str:
        """The message and hint as a single line, e.g. ``error: x: no such file (hint: ...)``."""
        text = self.message.replace("\n", " ")
        if self.hint:
            text += f" (fix: {self.hint})"
        return text


class ParityError(TritonRepoError):
    """The exported model's outputs differ from PyTorch's by more than the tolerance (exit code 1)."""

    def __init__(self, message: str, hint: str | None = None) -> None:
        super().__init__(message, hint, exit_code=1)
