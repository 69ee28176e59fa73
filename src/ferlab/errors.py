"""One exception type for every user-facing error.

The CLI prints ``error: <message>`` on one line and exits with code 2; the message names the file, class
or field at fault and the fix, so no traceback is needed.
"""


class FerlabError(Exception):
    """A problem with the user's input or environment, explained in one line."""

    exit_code = 2


def first_line(exc: BaseException) -> str:
    """An exception's message squeezed to one line (runtimes and Ray raise multi-line messages)."""
    text = " ".join(str(exc).split())
    return (text or type(exc).__name__)[:200]
