"""Errors that end a run with one line naming the path or config key and the fix (the traceback goes to the log)."""

WORKER_WRAPPER = "Caught "  # torch.utils.data re-raises a worker's exception as "Caught <Type> in DataLoader worker..."


class RunError(Exception):
    """A run cannot go on; the message is one line that names the offending path or key and the fix.

    The entry points print it as ``<ClassName>: <message>`` and exit with status 1, without a traceback.
    """


class ConfigError(RunError, ValueError):
    """A config value, path or file that cannot work, with the key to change and how to fix it.

    The message always names the offending path or config key and the fix, e.g.
    ``data.root: /data/imagenet does not exist. Set data.root=<folder with train/ and val/>.``
    """


class OutputWriteError(RunError):
    """An output file (checkpoint, metrics, record, table) could not be written; the previous one is intact."""


class Diverged(RunError):
    """Training produced a non-finite loss, metric or weight; nothing non-finite was saved as a checkpoint."""


class Preempted(RunError):
    """A preemption or time-limit signal stopped training after a checkpoint was saved; the run can be resumed."""


def one_line(error: BaseException) -> str:
    """The error's own message, also when a DataLoader worker raised it (torch wraps it in the worker traceback)."""
    text = str(error)
    name = f"{type(error).__name__}: "
    if text.startswith(WORKER_WRAPPER) and name in text:
        text = text.rsplit(name, 1)[1]
    return " ".join(text.split())


def check_int(value: object, key: str, suggestion: object, minimum: int = 1) -> None:
    """ConfigError naming ``key`` unless ``value`` is an integer >= ``minimum`` (a bool is not one)."""
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        bound = "a positive integer" if minimum == 1 else f"an integer >= {minimum}"
        raise ConfigError(f"{key}: must be {bound}, got {value!r}. Set e.g. {key}={suggestion}.")


def check_fraction(value: object, key: str, suggestion: str, positive: bool = False) -> float:
    """A number in [0, 1] ((0, 1] with ``positive``): an L-inf radius or step in [0, 1] pixel units."""
    number = isinstance(value, int | float) and not isinstance(value, bool)
    if not number or not (0 < value <= 1 if positive else 0 <= value <= 1):
        interval = "(0, 1]" if positive else "[0, 1]"
        raise ConfigError(f"{key}: must be a number in {interval} (pixel units), got {value!r}. Set {suggestion}.")
    return float(value)
