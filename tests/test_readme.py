"""The README's promises that a newcomer tries word for word: two set-up commands, and the example the suite runs.

The examples that moved to the documentation site (own component, own backbone) are checked in tests/test_docs.py.
"""

import os
import re
import runpy
import subprocess
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
README = (REPO / "README.md").read_text()
PLUGINS = REPO / "tests" / "plugins"


def section(title: str) -> str:
    start = README.index(f"\n{title}\n") + len(title) + 2
    following = re.search(r"^#{2,3} ", README[start:], re.M)
    return README[start : start + following.start()] if following else README[start:]


def test_quick_start_is_two_commands():
    (block,) = re.findall(r"```bash\n(.*?)```", section("## Quick start"), re.S)
    commands = [line.split("#")[0].strip() for line in block.splitlines() if line.split("#")[0].strip()]
    assert commands == ["make demo", "make test"]


def make_plan(target: str, venv: Path) -> str:
    """What ``make <target>`` would run (``make -n``), as from a fresh shell even when the suite runs under make."""
    env = {k: v for k, v in os.environ.items() if k not in ("MAKEFLAGS", "MAKELEVEL", "MFLAGS")}
    command = ["make", "--no-print-directory", "-n", target, f"VENV={venv}"]
    return subprocess.run(command, cwd=REPO, capture_output=True, text=True, check=True, env=env).stdout


def test_each_set_up_command_creates_the_environment_when_it_is_missing(tmp_path):
    for target, command in (("demo", "-m neurov1.train experiment=demo +model/components=all"), ("test", "-m pytest")):
        plan = make_plan(target, tmp_path / "venv")
        steps = plan.splitlines()
        assert "-m venv" in steps[0] and "pip install -e '.[dev,docs]'" in plan and command in steps[-1]
    (tmp_path / "venv").mkdir()
    (tmp_path / "venv" / ".installed").touch()  # a complete install newer than pyproject.toml: used as it is
    plan = make_plan("test", tmp_path / "venv")
    assert "venv" not in plan.replace(str(tmp_path / "venv"), "") and "pip" not in plan


def code_blocks(title: str) -> list[str]:
    """The fenced python/yaml blocks of a README section."""
    return re.findall(r"```(?:python|yaml)\n(.*?)```", section(title), re.S)


def test_the_readme_is_short_and_its_links_lead_somewhere():
    """At most 12 KB (the rest is on the documentation site), and every relative link names a file of the repository
    (with its anchor, when it gives one, a heading of that page)."""
    assert len(README.encode()) <= 12 * 1024
    links = re.findall(r"\]\(([^)#\s]+)(?:#([^)\s]+))?\)", README)
    assert links, "the README links into the documentation"
    for target, anchor in links:
        if target.startswith(("http://", "https://")):
            continue
        path = REPO / target
        assert path.exists(), target
        if anchor:
            headings = re.findall(r"^#+ (.+)$", path.read_text(), re.M)
            slugs = {re.sub(r"[^a-z0-9_ -]", "", heading.lower()).strip().replace(" ", "-") for heading in headings}
            assert anchor in slugs, f"{target}#{anchor}"


def test_the_dependency_example_is_the_file_the_suite_runs(capsys):
    """The README's "Use neurov1 from your project" block is tests/plugins/v1_features.py, and it runs."""
    (python,) = code_blocks("## Use neurov1 from your project")
    assert python == (PLUGINS / "v1_features.py").read_text()
    runpy.run_path(str(PLUGINS / "v1_features.py"), run_name="__main__")
    assert capsys.readouterr().out.strip() == "torch.Size([2, 64, 16, 16])"
