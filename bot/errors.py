"""Errors that end a command with one clear line (already in the user's language)."""


class UserError(Exception):
    """Shown as is, without a traceback; the command exits non-zero."""

    def __init__(self, message: str, exit_code: int = 1) -> None:
        super().__init__(message)
        self.exit_code = exit_code
