"""The one exception base class of the package.

Every failure that is the input's fault rather than a bug (a malformed data set, a video that
cannot be decoded, invalid parameters, an evaluation whose protocol the data cannot satisfy)
derives from :class:`DmcError`; ``dmc`` prints such an error as one line naming the file, key or
fold and the reason, and exits non-zero. Anything else is a bug and keeps its traceback.
"""


class DmcError(Exception):
    """An error the user can fix; ``str()`` is the whole message."""


class EvaluationError(DmcError, ValueError):
    """The evaluation protocol cannot be run on these data (names the data set, fold, class)."""


class ParamsError(DmcError, ValueError):
    """An invalid params.yaml; the message is one line that names the key (raised by
    :mod:`dmc.pipeline.params`, and by the steps for cross-checks only they can make)."""
