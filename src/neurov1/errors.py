"""Errors raised for bad input before any expensive work starts."""


class ConfigError(ValueError):
    """A config value, path or file that cannot work, with the key to change and how to fix it.

    The message always names the offending path or config key and the fix, e.g.
    ``data.root: /data/imagenet does not exist. Set data.root=<folder with train/ and val/>.``
    """


def check_int(value: object, key: str, suggestion: object, minimum: int = 1) -> None:
    """ConfigError naming ``key`` unless ``value`` is an integer >= ``minimum`` (a bool is not one)."""
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        bound = "a positive integer" if minimum == 1 else f"an integer >= {minimum}"
        raise ConfigError(f"{key}: must be {bound}, got {value!r}. Set e.g. {key}={suggestion}.")
