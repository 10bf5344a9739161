"""Errors raised for bad input before any expensive work starts."""


class ConfigError(ValueError):
    """A config value, path or file that cannot work, with the key to change and how to fix it.

    The message always names the offending path or config key and the fix, e.g.
    ``data.root: /data/imagenet does not exist. Set data.root=<folder with train/ and val/>.``
    """
