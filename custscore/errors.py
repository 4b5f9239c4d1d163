"""The one exception type for user errors (bad input, bad option, bad model URI).

The CLI turns a :class:`CustscoreError` into a one-line message and exit status 2;
any other exception is a bug and may show a traceback. :func:`warn` prints what the
data or the files cannot tell as one ``warning:`` line on stderr.
"""
import sys


class CustscoreError(ValueError):
    """A problem with what the user gave: a file, a column, a value or an option."""


class FitError(CustscoreError):
    """A model could not be fitted to the data (no convergence, too little data)."""


def warn(text: str) -> None:
    """Print ``warning: TEXT`` as one line on stderr."""
    print("warning: " + " ".join(str(text).split()), file=sys.stderr)


def warn_all(texts) -> None:
    """:func:`warn` each text of ``texts`` (e.g. a training result's warnings)."""
    for text in texts:
        warn(text)
