"""The one base class for memory failures a user can cause or fix (bad revision, bad
store URI, missing commits). Front ends show them as one line, never a traceback."""


class MemoryUserError(Exception):
    """A failure with a message fit to show a user as it is."""

    def one_line(self) -> str:
        text = str(self).strip()
        return text.splitlines()[0] if text else type(self).__name__
