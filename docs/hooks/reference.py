"""MkDocs hook: the parts of the reference that are generated at build time, so that they cannot go stale.

A page asks for a generated part with a marker line; :func:`on_page_markdown` replaces it:

- ``<!-- generated: configuration -->``: every primary config and every option of every config group under
  ``conf/``, with each key's default and the comment the yaml gives it;
- ``<!-- generated: ledger-schemas -->``: the fields of every results-ledger record, from
  :data:`neurov1.results.ledger.SCHEMAS`.

The functions are plain Python, so the tests call them too (tests/test_docs.py).
"""

import re
import sys
from pathlib import Path
from typing import Any

import yaml

REPO = Path(__file__).resolve().parents[2]
CONF = REPO / "conf"
PRIMARY = {
    "train": "python -m neurov1.train",
    "evaluate": "python -m neurov1.evaluate",
    "analyze": "python -m neurov1.analyze",
    "export": "python -m neurov1.export",
    "prepare": "python -m neurov1.prepare",
}
KEY = re.compile(r"^(?P<indent>\s*)(?P<key>[A-Za-z_+][\w.+/-]*)\s*:(?P<rest>.*)$")
PACKAGE = re.compile(r"^#\s*@package\s+(\S+)")


# ---------------------------------------------------------------------------------------------------- config files
def split_comment(text: str) -> tuple[str, str]:
    """``value  # comment`` -> (value, comment); a ``#`` inside quotes or not after a space is part of the value."""
    quote = None
    for index, char in enumerate(text):
        if char in "'\"" and quote in (None, char):
            quote = None if quote else char
        elif char == "#" and quote is None and (index == 0 or text[index - 1].isspace()):
            return text[:index].strip(), text[index + 1 :].strip()
    return text.strip(), ""


def read_config(path: Path) -> dict[str, Any]:
    """A config file's package line, header comment, values and the comment of each dotted key.

    The comment of a key is its trailing comment, or else the full-line comments just above it.
    """
    lines = path.read_text().splitlines()
    package, header, comments = None, [], {}
    stack: list[tuple[int, str]] = []
    pending: list[str] = []
    in_header = True
    last_key, last_column = None, -1  # the previous key with a trailing comment, and that comment's column
    for line in lines:
        stripped = line.strip()
        if match := PACKAGE.match(stripped):
            package = match.group(1)
            continue
        if stripped.startswith("#"):
            comment = stripped.lstrip("#").strip()
            if last_key is not None and line.index("#") == last_column:  # a trailing comment continued below
                comments[last_key] += " " + comment
            else:
                (header if in_header else pending).append(comment)
            continue
        last_key = None
        if not stripped:
            if not in_header:
                pending = []
            continue
        in_header = False
        match = KEY.match(line)
        if match is None:  # a list item or a continued value
            pending = []
            continue
        indent = len(match["indent"])
        while stack and stack[-1][0] >= indent:
            stack.pop()
        stack.append((indent, match["key"]))
        _, trailing = split_comment(match["rest"])
        comment = trailing or " ".join(pending)
        dotted = ".".join(key for _, key in stack)
        if comment:
            comments[dotted] = comment
        if trailing:
            last_key, last_column = dotted, line.rindex("# " + trailing[:10]) if "# " + trailing[:10] in line else -1
        pending = []
    values = yaml.safe_load(path.read_text()) or {}
    return {"package": package, "header": header, "values": values, "comments": comments}


def flat_values(values: Any, prefix: str = "") -> list[tuple[str, Any]]:
    """(dotted key, value) of every leaf; an empty mapping is a leaf."""
    if isinstance(values, dict) and values:
        items = []
        for key, value in values.items():
            items.extend(flat_values(value, f"{prefix}.{key}" if prefix else str(key)))
        return items
    return [(prefix, values)]


def show(value: Any) -> str:
    """A yaml value as one would type it in an override."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, list):
        return "[" + ", ".join(show(item) for item in value) + "]"
    if isinstance(value, dict):
        return "{" + ", ".join(f"{key}: {show(item)}" for key, item in value.items()) + "}"
    return str(value) if value != "" else '""'


def text(comment: str) -> str:
    """A yaml comment as the text of a Markdown table cell."""
    return comment.replace("|", "\\|").replace("<", "&lt;").replace("*", "\\*")


def code(value: str) -> str:
    """A code span (a pipe inside it does not split a table cell)."""
    return f"`{value}`"


def header_text(lines: list[str]) -> list[str]:
    """A config's header comment: its prose as a paragraph, the commands it shows as a shell block."""
    prose, commands = [], []
    for line in lines:
        continued = commands and commands[-1].endswith("\\")
        is_command = line.startswith(("python -m", "make ", "PYTHONPATH=")) or continued
        (commands if is_command else prose).append(line)
    out = [text(" ".join(prose)), ""] if prose else []
    return out + (["```bash", *commands, "```", ""] if commands else [])


def defaults_line(defaults: list[Any]) -> str:
    """A defaults list in one line: ``group: option`` entries and config names."""
    entries = []
    for entry in defaults:
        if isinstance(entry, dict):
            entries.extend(f"{key}: {show(value)}" for key, value in entry.items())
        else:
            entries.append(str(entry))
    return ", ".join(code(entry) for entry in entries)


def keys_table(config: dict[str, Any], prefix: str) -> list[str]:
    """The Markdown table of a config's keys (as overridden on the command line), defaults and comments."""
    values = {key: value for key, value in config["values"].items() if key != "defaults"}
    if not values:
        return []
    rows = []
    for key, value in flat_values(values):
        full = f"{prefix}.{key}" if prefix else key
        rows.append(f"| {code(full)} | {code(show(value))} | {text(config['comments'].get(key, ''))} |")
    if not rows:
        return []
    return ["| key | default | what it sets |", "|---|---|---|", *rows, ""]


def groups() -> dict[str, list[Path]]:
    """``{group path: [option files]}`` of every config group under conf/, sorted."""
    found: dict[str, list[Path]] = {}
    for path in sorted(CONF.rglob("*.yaml")):
        if path.parent != CONF:
            found.setdefault(path.parent.relative_to(CONF).as_posix(), []).append(path)
    return dict(sorted(found.items()))


def selection(group: str, option: str) -> str:
    """How the command line selects ``option`` of ``group``."""
    if group == "model/components":
        return f"+{group}={option}"
    if group.startswith("hydra/"):
        return f"{group}={option}" if group != "hydra" else ""
    return f"{group}={option}"


def configuration() -> str:
    """The generated configuration reference: primary configs, then every group and option."""
    out = ["## Commands and their primary configs", ""]
    for name, command in PRIMARY.items():
        config = read_config(CONF / f"{name}.yaml")
        out += [f"### `{name}.yaml`", "", f"`{command}`", "", *header_text(config["header"])]
        if defaults := config["values"].get("defaults"):
            out += [f"Defaults list: {defaults_line(defaults)}.", ""]
        out += keys_table(config, "")
    out += ["## Config groups", ""]
    for group, files in groups().items():
        options = [path.stem for path in files]
        how = "one or several (a list)" if group == "model/components" else "one"
        out += [f"### `{group}`", "", f"Options ({how}): " + ", ".join(code(option) for option in options) + ".", ""]
        for path in files:
            config = read_config(path)
            package = config["package"] or group.replace("/", ".")
            prefix = "" if package == "_global_" else package
            chosen = selection(group, path.stem)
            out += [f"#### `{group}/{path.stem}`", ""]
            if chosen:
                out += [f"Select with {code(chosen)}.", ""]
            out += header_text(config["header"])
            if defaults := config["values"].get("defaults"):
                out += [f"Defaults list: {defaults_line(defaults)}.", ""]
            out += keys_table(config, prefix)
    return "\n".join(out)


# ------------------------------------------------------------------------------------------------- ledger schemas
def _type_name(spec: Any) -> str:
    names = {str: "string", int: "integer", float: "number", bool: "boolean", dict: "object", type(None): "null"}
    if isinstance(spec, tuple):
        return " or ".join(names.get(item, item.__name__) for item in spec)
    if isinstance(spec, type):
        return names.get(spec, spec.__name__)
    if isinstance(spec, list):
        return "list"
    return "object"


def schema_rows(spec: Any, path: str, optional: bool = False) -> list[tuple[str, str, bool]]:
    """(field path, type, may be missing) for ``spec`` (neurov1.results.ledger's schema notation) and below."""
    from neurov1.results.ledger import Optional_

    if isinstance(spec, Optional_):
        return schema_rows(spec.spec, path, optional=True)
    if isinstance(spec, list):
        return [(path, f"list of {_type_name(spec[0])}", optional), *schema_rows(spec[0], f"{path}[]")[1:]]
    if isinstance(spec, dict):
        rows = [(path, "object", optional)] if path else []
        if list(spec) == [str]:
            rows[-1:] = [(path, f"object: any key -> {_type_name(spec[str])}", optional)]
            return rows + schema_rows(spec[str], f"{path}.<key>")[1:]
        for key, item in spec.items():
            rows += schema_rows(item, f"{path}.{key}" if path else key)
        return rows
    return [(path, _type_name(spec), optional)]


def ledger_schemas() -> str:
    """The generated ledger reference: the fields every record holds, then those of each command."""
    sys.path.insert(0, str(REPO / "src"))
    from neurov1.results.ledger import COMMON, SCHEMAS

    out = ["Every record:", "", "| field | type |", "|---|---|"]
    out += [f"| `{path}` | {kind} |" for path, kind, _ in schema_rows(COMMON, "")]
    for command, spec in SCHEMAS.items():
        out += ["", f"`{command}` records (`records/{command}-<id>.json`):", "", "| field | type | required |"]
        out += ["|---|---|---|"]
        rows = schema_rows(spec, "")
        out += [f"| `{path}` | {kind} | {'no' if optional else 'yes'} |" for path, kind, optional in rows]
    return "\n".join(out) + "\n"


GENERATED = {"configuration": configuration, "ledger-schemas": ledger_schemas}
MARKER = re.compile(r"^<!-- generated: ([\w-]+) -->$", re.M)


def expand(markdown: str) -> str:
    """``markdown`` with every generated part in place of its marker."""
    return MARKER.sub(lambda match: GENERATED[match.group(1)](), markdown)


def on_page_markdown(markdown: str, **_: Any) -> str:
    """MkDocs' hook: expand the markers of every page."""
    return expand(markdown)
