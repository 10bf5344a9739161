"""The wheel: it holds every config and module, and installed apart from the source tree it trains the demo from any
folder (as a project that depends on neurov1 runs it)."""

import json
import os
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

from conftest import ALL, REPO, TINY_DEMO, run_dirs

# Run a command of the installed package in a fresh interpreter that cannot see the source tree: no sys.path entry
# holding a neurov1 package, no editable-install finder; then check where every neurov1 module came from.
CHILD = """
import json, runpy, sys
from pathlib import Path
target, commands = sys.argv[1], json.loads(sys.argv[2])
sys.path[:] = [target, *(p for p in sys.path if not (Path(p or ".") / "neurov1").exists())]
sys.meta_path[:] = [f for f in sys.meta_path if "__editable__" not in getattr(f, "__module__", "")]
sys.path_hooks[:] = [h for h in sys.path_hooks if "__editable__" not in getattr(h, "__module__", "")]
sys.path_importer_cache.clear()
for module, *arguments in commands:
    sys.argv = [module, *arguments]
    try:
        runpy.run_module(module, run_name="__main__", alter_sys=True)
    except SystemExit as stop:
        if stop.code:
            raise
files = [getattr(m, "__file__", None) or "" for name, m in list(sys.modules.items()) if name.startswith("neurov1")]
print(json.dumps({"files": files}))
"""
# Every other command finds its config (Hydra's --cfg job composes it) or shows its options.
OTHER_COMMANDS = [
    *[[f"neurov1.{verb}", "--cfg", "job"] for verb in ("evaluate", "analyze", "prepare", "export")],
    *[[f"neurov1.{verb}", "--help"] for verb in ("report", "corrupt", "bench")],
]


def test_the_wheel_installs_and_trains_the_demo_from_any_folder(tmp_path):
    source = tmp_path / "source"
    ignore = shutil.ignore_patterns("__pycache__", "*.egg-info", "build")
    for name in ("src", "conf"):
        shutil.copytree(REPO / name, source / name, ignore=ignore)
    for name in ("setup.py", "pyproject.toml", "README.md"):
        shutil.copy(REPO / name, source / name)
    pip = [sys.executable, "-m", "pip", "--disable-pip-version-check", "-q"]
    build = [*pip, "wheel", "--no-deps", "--no-build-isolation", "-w", str(tmp_path / "dist"), str(source)]
    subprocess.run(build, check=True, capture_output=True)
    (wheel,) = (tmp_path / "dist").glob("neurov1-*.whl")

    contents = set(zipfile.ZipFile(wheel).namelist())
    configs = {f"neurov1/conf/{path.relative_to(REPO / 'conf').as_posix()}" for path in (REPO / "conf").rglob("*.yaml")}
    modules = {path.relative_to(REPO / "src").as_posix() for path in (REPO / "src").rglob("*.py")}
    assert len(configs) > 50 and configs <= contents and modules <= contents
    assert {name for name in contents if name.startswith("neurov1/conf/") and name.endswith(".yaml")} == configs

    target = tmp_path / "site"
    subprocess.run([*pip, "install", "--no-deps", "--target", str(target), str(wheel)], check=True, capture_output=True)
    folder = tmp_path / "elsewhere"
    folder.mkdir()
    environment = {key: value for key, value in os.environ.items() if key != "PYTHONPATH" and "WANDB" not in key}
    overrides = [*TINY_DEMO, "+model/components=all", "+trainer.limit_train_batches=2", "+trainer.limit_val_batches=1"]
    commands = [["neurov1.train", *overrides, f"paths.log_dir={tmp_path / 'logs'}"], *OTHER_COMMANDS]
    result = subprocess.run(
        [sys.executable, "-c", CHILD, str(target), json.dumps(commands)],
        cwd=folder,
        env={**environment, "WANDB_MODE": "disabled"},
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert "model:" in result.stdout and "usage: python -m neurov1.corrupt" in result.stdout
    files = json.loads(result.stdout.strip().splitlines()[-1])["files"]
    assert files and all(Path(file).is_relative_to(target) for file in files if file), files
    (run_dir,) = run_dirs(tmp_path / "logs")
    metrics = json.loads((run_dir / "metrics.json").read_text())
    assert metrics["status"] == "completed" and metrics["global_step"] == 2
    assert metrics["components"] == ALL
