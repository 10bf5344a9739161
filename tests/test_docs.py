"""The documentation site (docs/, mkdocs.yml): its examples are the code the suite runs, its reference is complete.

The how-to pages include the files of tests/plugins/ (pymdownx.snippets), so what a reader copies is what these tests
train and evaluate; the configuration reference is generated from conf/ at build time (docs/hooks/), and the schemas
of the output files are checked against the code that writes them.
"""

import ast
import contextlib
import importlib
import importlib.util
import io
import json
import os
import re
import shlex
import signal
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from hydra import compose, initialize_config_dir

from neurov1.results.ledger import SCHEMAS, load_records

REPO = Path(__file__).resolve().parents[1]
CONF = REPO / "conf"
DOCS = REPO / "docs"
PLUGINS = REPO / "tests" / "plugins"
SEARCHPATH = f"hydra.searchpath=[file://{PLUGINS / 'conf'}]"
SNIPPET = re.compile(r'^--8<-- "([^"]+)"$', re.M)
BLOCK = re.compile(r"^```(\w+)([^\n]*)\n(.*?)^```$", re.M | re.S)


def hook():
    """docs/hooks/reference.py, the MkDocs hook that generates the reference, as a module."""
    spec = importlib.util.spec_from_file_location("docs_reference_hook", DOCS / "hooks" / "reference.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def page(name: str) -> str:
    """A page's Markdown with its snippets included, as pymdownx.snippets includes them (paths from the root)."""
    return SNIPPET.sub(lambda match: (REPO / match.group(1)).read_text().rstrip("\n"), (DOCS / name).read_text())


def blocks(name: str, language: str) -> list[tuple[str, str]]:
    """(title, code) of every fenced ``language`` block of a page."""
    found = []
    for lang, attributes, code in BLOCK.findall(page(name)):
        if lang == language:
            title = re.search(r'title="([^"]+)"', attributes)
            found.append((title.group(1) if title else "", code))
    return found


def nav_pages() -> list[str]:
    """Every page of mkdocs.yml's navigation."""

    class Loader(yaml.SafeLoader):
        pass

    Loader.add_multi_constructor("tag:yaml.org,2002:python/name:", lambda loader, suffix, node: suffix)
    config = yaml.load((REPO / "mkdocs.yml").read_text(), Loader=Loader)

    def walk(item):
        if isinstance(item, str):
            yield item
        elif isinstance(item, list):
            for entry in item:
                yield from walk(entry)
        elif isinstance(item, dict):
            for entry in item.values():
                yield from walk(entry)

    return list(walk(config["nav"]))


# ------------------------------------------------------------------------------------------------------ the pages
def test_every_page_of_the_site_exists_with_content():
    pages = nav_pages()
    assert len(pages) >= 30
    for name in pages:
        text = (DOCS / name).read_text()
        assert text.startswith("# ") and len(text) > 500, name
    listed = {str(path.relative_to(DOCS)) for path in DOCS.rglob("*.md")}
    assert listed == set(pages), "every page is in the navigation"


def test_the_own_component_example_is_the_one_the_suite_trains():
    """Moved from the README: the page shows tests/plugins/gabor_bank.py and gabor.yaml, which
    tests/test_train.py trains, saves and reloads."""
    ((_, python),) = blocks("how-to/add-a-component.md", "python")
    yaml_blocks = blocks("how-to/add-a-component.md", "yaml")
    assert python == (PLUGINS / "gabor_bank.py").read_text()
    assert yaml_blocks[-1][1] == (PLUGINS / "conf" / "model" / "components" / "gabor.yaml").read_text()


def test_the_own_backbone_example_is_the_one_the_suite_builds():
    """Moved from the README: the page shows tests/plugins/wide_resnet_backbone.py (tests/models/test_builder.py)."""
    ((_, python),) = blocks("how-to/add-a-backbone.md", "python")
    assert python == (PLUGINS / "wide_resnet_backbone.py").read_text()


@pytest.mark.parametrize(
    ("name", "files"),
    [
        ("how-to/add-an-evaluation.md", ["contrast_response.py", "conf/eval/contrast_response.yaml"]),
        ("how-to/add-a-dataset.md", ["oriented_gratings.py", "conf/data/oriented_gratings.yaml"]),
        ("how-to/use-from-your-project.md", ["v1_features.py"]),
    ],
)
def test_the_new_how_to_examples_are_the_files_the_suite_runs(name, files):
    shown = [code for language in ("python", "yaml") for _, code in blocks(name, language)]
    for file in files:
        assert (PLUGINS / file).read_text() in shown, file


def test_the_python_blocks_of_the_pages_run(tmp_path, monkeypatch):
    """Every Python block of every page runs (in a folder with an empty ledger), and a ``print(...)  # value``
    prints that value; blocks that read a run of yours (a ``<run>`` placeholder) are not run."""
    monkeypatch.chdir(tmp_path)
    (tmp_path / "outputs" / "results" / "records").mkdir(parents=True)
    ran = 0
    for name in nav_pages():
        for title, code in blocks(name, "python"):
            if "<run>" in code:
                continue
            expected = re.findall(r"^print\(.*\)  # (.+)$", code, re.M)
            output = io.StringIO()
            with contextlib.redirect_stdout(output):
                exec(compile(code, f"{name}: {title or 'block'}", "exec"), {"__name__": "docs_block"})
            printed = output.getvalue().splitlines()
            assert printed[: len(expected)] == expected, f"{name}: {title}"
            ran += 1
    assert ran >= 6


# -------------------------------------------------------------------------------------------- the reference
def test_the_configuration_reference_names_every_option_and_key():
    """Moved here: every config option is documented. The reference is generated from conf/, so it lists every
    group's options and every key of every file; a key without a comment is listed with its default."""
    reference = hook()
    text = reference.configuration()
    for path in sorted(CONF.rglob("*.yaml")):
        config = reference.read_config(path)
        if path.parent == CONF:
            assert f"### `{path.stem}.yaml`" in text, path
        else:
            assert f"#### `{path.parent.relative_to(CONF).as_posix()}/{path.stem}`" in text, path
        for key, _ in reference.flat_values({k: v for k, v in config["values"].items() if k != "defaults"}):
            assert f"{key}`" in text, f"{path}: {key}"
    assert "| `model.net.components.center_surround.fraction` | `0.25` |" in text
    assert "| `data.decode` | `fast` | fast \\| exact |" in text  # a key's yaml comment is its description


def test_the_ledger_reference_is_the_schema_the_report_checks():
    text = hook().ledger_schemas()
    for command, spec in SCHEMAS.items():
        assert f"`{command}` records" in text
        for key in spec:
            assert f"| `{key}` |" in text, (command, key)


def returned_keys(path: Path, function: str) -> set[str]:
    """The string keys of every dict display in ``function`` of the module at ``path`` (its output's keys)."""
    tree = ast.parse(path.read_text())
    node = next(n for n in ast.walk(tree) if isinstance(n, ast.FunctionDef) and n.name == function)
    return {
        key.value
        for display in ast.walk(node)
        if isinstance(display, ast.Dict)
        for key in display.keys
        if isinstance(key, ast.Constant) and isinstance(key.value, str)
    }


def documented_keys(heading: str) -> str:
    """The section of reference/outputs.md under ``heading``."""
    text = (DOCS / "reference" / "outputs.md").read_text()
    start = text.index(f"## {heading}\n")
    end = text.find("\n## ", start + 1)
    return text[start : end if end > 0 else None]


@pytest.mark.parametrize(
    ("heading", "writers"),
    [
        ("`metrics.json`", [("training/run.py", "run_summary")]),
        (
            "`v1_scores.json`",
            [
                ("evaluation/brainscore/scoring.py", "header"),
                ("evaluation/brainscore/scoring.py", "summarize"),
                ("evaluation/brainscore/scoring.py", "score_entry"),
                ("evaluation/brainscore/evaluation.py", "evaluate_v1"),
            ],
        ),
        (
            "`v1_probe.json`",
            [("evaluation/v1_probe.py", "probe_v1"), ("evaluation/probe/scoring.py", "distribution_summary")],
        ),
    ],
)
def test_the_output_schemas_name_every_key_the_code_writes(heading, writers):
    section = documented_keys(heading)
    src = REPO / "src" / "neurov1"
    for module, function in writers:
        for key in returned_keys(src / module, function):
            assert f"`{key}`" in section or f"{key}_" in section, f"{heading}: {key} ({module}:{function})"


@pytest.mark.slow
def test_the_site_builds_strictly(tmp_path):
    """``make docs`` (also run by .ci/run): no warning, broken link or missing reference."""
    pytest.importorskip("mkdocs")
    command = [sys.executable, "-m", "mkdocs", "build", "--strict", "--site-dir", str(tmp_path / "site")]
    result = subprocess.run(
        command, cwd=REPO, capture_output=True, text=True, env={**os.environ, "NO_MKDOCS_2_WARNING": "1"}
    )
    assert result.returncode == 0, result.stderr[-3000:]


# -------------------------------------------------------------------------------- the how-to examples, run


def compose_command(config: str, *overrides: str, out: Path):
    """The config a ``python -m neurov1.<config>`` command composes, writing into ``out`` (no Hydra run folder)."""
    paths = (f"paths.log_dir={out}", f"paths.output_dir={out / 'run'}", f"paths.results_dir={out / 'results'}")
    with initialize_config_dir(config_dir=str(CONF), version_base="1.3"):
        return compose(config, overrides=[*overrides, *paths])


def test_the_evaluation_kind_example_scores_a_model(tmp_path, monkeypatch):
    """tests/plugins/contrast_response.py, selected with eval=contrast_response from its own config folder."""
    from neurov1.evaluate import evaluate

    monkeypatch.syspath_prepend(str(PLUGINS))
    components = "+model/components=[center_surround,tuned_norm]"
    cfg = compose_command(
        "evaluate",
        SEARCHPATH,
        "eval=contrast_response",
        "ckpt_path=null",
        "model.net.arch=resnet18",
        components,
        out=tmp_path,
    )
    outcome = evaluate(cfg)
    result = json.loads((tmp_path / "run" / "contrast_response.json").read_text())
    assert result["layer"] == "layer1" and len(result["mean_response"]) == 7
    assert result["model"] == "resnet18-center_surround+tuned_norm-untrained"
    assert outcome.metrics["contrast/gain"] == pytest.approx(result["mean_response"][-1] - result["mean_response"][0])
    (record,) = load_records(tmp_path / "results")
    assert record["eval"] == "contrast_response" and record["metrics"] == outcome.metrics


def test_the_evaluation_kind_example_checks_its_settings(monkeypatch):
    from neurov1.errors import ConfigError

    monkeypatch.syspath_prepend(str(PLUGINS))
    from contrast_response import ContrastResponse

    with pytest.raises(ConfigError, match="eval.contrasts"):
        ContrastResponse(contrasts=[0.5, 0.1])


def test_the_dataset_example_trains_a_model(tmp_path, monkeypatch):
    """tests/plugins/oriented_gratings.py, selected with data=oriented_gratings from its own config folder."""
    from neurov1.train import train

    monkeypatch.syspath_prepend(str(PLUGINS))
    cfg = compose_command(
        "train",
        "experiment=demo",
        SEARCHPATH,
        "data=oriented_gratings",
        "data.train_per_class=8",
        "data.val_per_class=4",
        "trainer.max_epochs=1",
        "model.scheduler.milestones=[1]",
        "+model/components=[tuned_norm]",
        "~callbacks.progress_bar",
        "~callbacks.model_summary",
        out=tmp_path,
    )
    handlers = {signum: signal.getsignal(signum) for signum in (signal.SIGTERM, signal.SIGUSR2)}
    try:
        metrics = train(cfg)
    finally:  # the run takes over the preemption signals; this test process keeps its own
        for signum, handler in handlers.items():
            signal.signal(signum, handler)
    assert metrics["status"] == "completed" and metrics["data"]["name"] == "OrientedGratingsDataModule"
    assert metrics["data"]["num_classes"] == 4 and metrics["global_step"] == 2
    assert (tmp_path / "run" / "checkpoints" / "last.ckpt").is_file()


# ------------------------------------------------------------------------------------------- the command lines
COMMANDS = ("train", "evaluate", "analyze", "export", "prepare")  # the Hydra commands (report, corrupt: argparse)


def command_lines(text: str) -> list[str]:
    """The ``python -m neurov1.<Hydra command>`` lines of the bash blocks of ``text`` (continuations joined)."""
    lines = []
    for language, _, code in BLOCK.findall(text):
        if language != "bash":
            continue
        for line in code.replace("\\\n", " ").splitlines():
            line = re.sub(r"\s+#.*$", "", line).strip()
            if re.search(rf"python -m neurov1\.({'|'.join(COMMANDS)})\b", line):
                lines.append(line)
    return lines


def documented_commands() -> list[tuple[str, str]]:
    sources = {"README.md": (REPO / "README.md").read_text()}
    sources |= {name: page(name) for name in nav_pages()}
    return [(name, line) for name, text in sources.items() for line in command_lines(text)]


def test_every_documented_command_composes():
    """Every neurov1 command line of the README and the pages composes with the real configs: its groups, options
    and keys exist (placeholders such as <run> are values; plug-in folders are tests/plugins)."""
    commands = documented_commands()
    assert len(commands) >= 40
    seen = set()
    with initialize_config_dir(config_dir=str(CONF), version_base="1.3"):
        for name, line in commands:
            words = shlex.split(re.sub(r"<[^>]*>", "placeholder", line))
            start = words.index("-m") + 1
            overrides = [
                word.replace("file://my_configs", f"file://{PLUGINS / 'conf'}")
                for word in words[start + 1 :]
                if "=" in word and not word.startswith("-")
            ]
            if (words[start], *overrides) in seen:
                continue
            seen.add((words[start], *overrides))
            hydra_keys = any(o.startswith(("hydra/", "hydra.")) and "searchpath" not in o for o in overrides)
            try:
                compose(words[start].removeprefix("neurov1."), overrides=overrides, return_hydra_config=hydra_keys)
            except Exception as error:
                pytest.fail(f"{name}: {line}\n{type(error).__name__}: {error}")


def python_object(dotted: str) -> bool:
    """Whether ``dotted`` is a module of neurov1 or an attribute (chain) of one."""
    parts = dotted.split(".")
    for end in range(len(parts), 0, -1):
        try:
            found = importlib.import_module(".".join(parts[:end]))
        except ImportError:
            continue
        for attribute in parts[end:]:
            if not hasattr(found, attribute):
                return False
            found = getattr(found, attribute)
        return True
    return False


def test_the_files_and_names_the_pages_give_exist():
    """A path the README or a page names in code (``tests/...``, ``src/...``, ``conf/...``) is in the repository, and
    a dotted ``neurov1.`` name is a module of neurov1 or an attribute of one."""
    texts = {"README.md": (REPO / "README.md").read_text()} | {name: page(name) for name in nav_pages()}
    for name, text in texts.items():
        for path in re.findall(r"`((?:tests|src|conf|docs|experiments)/[\w/.-]+)`", text):
            assert (REPO / path.split("::")[0]).exists(), f"{name}: {path}"
        for dotted in sorted(set(re.findall(r"`(neurov1(?:\.\w+)+)`", text))):
            assert python_object(dotted), f"{name}: {dotted}"
