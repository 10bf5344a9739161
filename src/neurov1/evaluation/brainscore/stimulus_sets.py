"""The five Marques2020 grating stimulus sets, rendered locally from the parameters Brain-Score publishes.

Brain-Score's V1 property benchmarks (Marques, Schrimpf & DiCarlo 2021) show full-contrast sine gratings in a hard
circular aperture on a grey background. The stimulus sets live on Brain-Score's S3 bucket, but the generator and its
parameters ship inside the installed package (``brainscore_vision/data/marques2020/data_packaging/``):

- ``marques_gen_stim.py``: ``DEGREES = 12``, ``SIZE_PX = 672`` and the parameter tables ``GRAT_PARAMS`` (one row per
  stimulus: position_y, position_x, contrast, radius, spatial_frequency, orientation, phase; degrees, cycles per
  degree and degrees of angle). The blank stimulus is 448 px for 12 deg (``gen_blank_stim(..., size_px=448)``).
- ``marques_stim_common.py``: the ``Grating`` and ``Stimulus`` classes that draw the images.

This module imports those scripts (they are plain modules, importable once their sibling imports are aliased, see
:func:`packaging_module`) and calls the package's own classes to draw every image, so the parameters and pixels are
the package's, not a copy. What is ours: the row order, file names, the on-disk cache and the parallel rendering.

Row order. The benchmarks reshape responses by the sorted unique parameter values and assert the order
(``benchmark_helpers.properties_common._assert_grating_activations``):

- receptive field, spatial frequency and size sets are full factorial grids and must be in canonical nested order:
  position_y, position_x, contrast, radius, spatial_frequency, orientation, phase (phase fastest). ``GRAT_PARAMS``
  already has this order for the spatial frequency and size sets; its receptive field table comes out of
  ``np.meshgrid`` with position_x fastest, which the benchmark's assertion rejects, so full grids are sorted into
  canonical order (a no-op for the other two).
- the orientation set is not a grid: the radius is tied to the spatial frequency (2, 3 or 4 half-cycles), and the
  benchmark reshapes it as (cycle, spatial_frequency, orientation, phase) with the radius multiplier as cycle. Its
  rows are kept in ``GRAT_PARAMS`` order (multiplier, then spatial frequency, orientation, phase; phase fastest).

Metadata columns: ``stimulus_id`` (the row number), ``image_id`` (its legacy BrainIO name, as in the packaged CSVs),
``degrees`` (12), the seven parameter columns (not for the blank), ``image_file_name`` and ``filename`` (the PNG's
name, ``<stimulus_id>.png`` as in Brain-Score's zip archives). The set's ``identifier`` is its registry key.

Cache: PNGs go to ``<cache_dir>/marques2020/<name>/``; ``index.csv`` (the metadata) is written last and atomically,
so a folder without an up-to-date index is re-rendered and one with it is reused. Rendering is deterministic (no
randomness; the PNG encoder is lossless and deterministic) and independent of the number of workers.
"""

from __future__ import annotations

import os

os.environ.setdefault("BS_INSTALL_DEPENDENCIES", "no")  # before brainscore_vision is imported: no pip installs

import importlib
import math
import multiprocessing
import sys
from collections.abc import Iterator, Mapping, Sequence
from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait
from functools import cache
from pathlib import Path
from types import ModuleType

import numpy as np
import pandas as pd
from PIL import Image
from tqdm import tqdm

BLANK = "Marques2020_blank"
RECEPTIVE_FIELD = "Marques2020_receptive_field"
ORIENTATION = "Marques2020_orientation"
SPATIAL_FREQUENCY = "Marques2020_spatial_frequency"
SIZE = "Marques2020_size"
STIMULUS_SETS: tuple[str, ...] = (BLANK, RECEPTIVE_FIELD, ORIENTATION, SPATIAL_FREQUENCY, SIZE)

PARAMETER_COLUMNS: tuple[str, ...] = (
    "position_y",
    "position_x",
    "contrast",
    "radius",
    "spatial_frequency",
    "orientation",
    "phase",
)
BLANK_SIZE_PX = 448  # marques_gen_stim.main(): gen_blank_stim(degrees=DEGREES, size_px=448, ...)
PNG_COMPRESS_LEVEL = 1  # lossless either way; level 1 is ~2x faster to write than the default 6
INDEX_FILE = "index.csv"
CHUNK_SIZE = 32  # images per worker task

_PACKAGING = "brainscore_vision.data.marques2020.data_packaging"


def packaging_module(name: str) -> ModuleType:
    """Import ``brainscore_vision/data/marques2020/data_packaging/<name>.py`` from the installed package.

    The packaging scripts were written to run from their own folder and import their siblings as top-level modules
    (``from marques_utils import gen_sample``). Each such sibling is imported under its package path and aliased in
    ``sys.modules`` under the top-level name, so the scripts import unchanged (their ``main()`` is never called).
    """
    for _ in range(8):
        try:
            return importlib.import_module(f"{_PACKAGING}.{name}")
        except ModuleNotFoundError as error:
            sibling = error.name
            if not sibling or not sibling.startswith("marques_") or sibling in sys.modules:
                raise
            sys.modules[sibling] = importlib.import_module(f"{_PACKAGING}.{sibling}")
    raise ImportError(f"could not import {_PACKAGING}.{name}")


def _check_name(name: str) -> None:
    if name not in STIMULUS_SETS:
        raise ValueError(f"unknown Marques2020 stimulus set {name!r}; expected one of {', '.join(STIMULUS_SETS)}")


@cache
def grating_parameters(name: str) -> np.ndarray:
    """The (n, 7) parameter table of a grating set (columns: :data:`PARAMETER_COLUMNS`) in benchmark row order."""
    _check_name(name)
    if name == BLANK:
        raise ValueError(f"{BLANK} has no grating parameters")
    params = np.array(packaging_module("marques_gen_stim").GRAT_PARAMS[name], dtype=float)
    columns = [params[:, i] for i in range(params.shape[1])]
    if math.prod(len(np.unique(column)) for column in columns) == len(params):
        # full factorial grid: canonical nested order, position_y slowest ... phase fastest
        # (np.lexsort sorts by its last key first)
        params = params[np.lexsort(columns[::-1])]
    params.setflags(write=False)
    return params


def stimulus_metadata(name: str, limit: int | None = None) -> pd.DataFrame:
    """The metadata table of a stimulus set in benchmark row order, computed without rendering anything.

    ``limit`` keeps only the first ``limit`` rows.
    """
    _check_name(name)
    degrees = packaging_module("marques_gen_stim").DEGREES
    if name == BLANK:
        metadata = pd.DataFrame({"degrees": [degrees]})
    else:
        metadata = pd.DataFrame(grating_parameters(name).copy(), columns=list(PARAMETER_COLUMNS))
        metadata.insert(0, "degrees", degrees)
    if limit is not None:
        metadata = metadata.iloc[: max(int(limit), 0)].copy()
    ids = np.arange(len(metadata))
    metadata.insert(0, "stimulus_id", ids)
    metadata.insert(1, "image_id", ids)  # legacy name of stimulus_id in the packaged CSVs
    metadata["image_file_name"] = [f"{i}.png" for i in ids]
    metadata["filename"] = metadata["image_file_name"]
    return metadata.reset_index(drop=True)


def render_stimulus(name: str, parameters: Sequence[float] = ()) -> np.ndarray:
    """Draw one stimulus with the package's own classes: a (px, px) uint8 grey-level image.

    ``parameters`` is one row of :func:`grating_parameters` (ignored for the blank).
    """
    _check_name(name)
    common = packaging_module("marques_stim_common")
    if name == BLANK:
        return common.Stimulus(size_px=[BLANK_SIZE_PX, BLANK_SIZE_PX]).stimulus
    gen = packaging_module("marques_gen_stim")
    y, x, contrast, radius, spatial_frequency, orientation, phase = (float(value) for value in parameters)
    # same call as marques_stim_common.gen_grating_stim, without its save step
    grating = common.Grating(
        width=gen.DEGREES,
        pos=[y, x],
        contrast=contrast,
        rad=radius,
        sf=spatial_frequency,
        orientation=orientation,
        phase=phase,
        size_px=[gen.SIZE_PX, gen.SIZE_PX],
    )
    grating.update_stimulus()
    return grating.stimulus


def _write_png(image: np.ndarray, path: Path) -> None:
    temporary = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    Image.fromarray(image).save(temporary, format="PNG", compress_level=PNG_COMPRESS_LEVEL)
    os.replace(temporary, path)


def _render_chunk(name: str, directory: str, rows: list[tuple[str, tuple[float, ...]]]) -> int:
    """Worker task: draw and save ``rows`` (file name, parameters); returns how many were written."""
    for filename, parameters in rows:
        _write_png(render_stimulus(name, parameters), Path(directory) / filename)
    return len(rows)


def _pool_context() -> multiprocessing.context.BaseContext:
    # fork: workers inherit the imported package instead of re-importing brainscore_vision (seconds each)
    methods = multiprocessing.get_all_start_methods()
    return multiprocessing.get_context("fork" if "fork" in methods else "spawn")


def _render_all(name: str, metadata: pd.DataFrame, directory: Path, workers: int, progress: bool) -> None:
    if name == BLANK:
        jobs = [(filename, ()) for filename in metadata["filename"]]
    else:
        params = metadata[list(PARAMETER_COLUMNS)].to_numpy(dtype=float)
        jobs = [(filename, tuple(row)) for filename, row in zip(metadata["filename"], params, strict=True)]
    chunks = [jobs[i : i + CHUNK_SIZE] for i in range(0, len(jobs), CHUNK_SIZE)]
    with tqdm(total=len(jobs), desc=f"render {name}", unit="img", disable=not progress, dynamic_ncols=True) as bar:
        if workers <= 1 or len(chunks) <= 1:
            for chunk in chunks:
                bar.update(_render_chunk(name, str(directory), chunk))
            return
        pool = ProcessPoolExecutor(max_workers=min(workers, len(chunks)), mp_context=_pool_context())
        try:
            pending = {pool.submit(_render_chunk, name, str(directory), chunk) for chunk in chunks}
            while pending:
                done, pending = wait(pending, return_when=FIRST_COMPLETED)
                for future in done:
                    bar.update(future.result())
        except BaseException:
            pool.shutdown(wait=False, cancel_futures=True)
            raise
        pool.shutdown(wait=True)


def _index_is_current(index: Path, expected_csv: str, directory: Path, filenames: Sequence[str]) -> bool:
    try:
        if index.read_text() != expected_csv:
            return False
    except OSError:
        return False
    return all((directory / filename).is_file() for filename in filenames)


def stimulus_directory(name: str, cache_dir: str | os.PathLike[str]) -> Path:
    """Where :func:`generate_marques_stimuli` keeps a set: ``<cache_dir>/marques2020/<name>``."""
    _check_name(name)
    return Path(cache_dir) / "marques2020" / name


def _stimulus_set(name: str, metadata: pd.DataFrame, directory: Path | None):
    from brainscore_core.supported_data_standards.brainio.stimuli import StimulusSet

    stimulus_set = StimulusSet(metadata.copy())
    if directory is not None:
        stimulus_set.stimulus_paths = {
            stimulus_id: directory / filename
            for stimulus_id, filename in zip(metadata["stimulus_id"], metadata["filename"], strict=True)
        }
    stimulus_set.identifier = name
    return stimulus_set


def generate_marques_stimuli(
    name: str,
    cache_dir: str | os.PathLike[str],
    workers: int | None = 2,
    progress: bool = True,
    *,
    limit: int | None = None,
):
    """The Marques2020 stimulus set ``name`` as a Brain-Score ``StimulusSet``, rendered on first use, then cached.

    :param name: a registry name, one of :data:`STIMULUS_SETS`.
    :param cache_dir: images go to ``<cache_dir>/marques2020/<name>/``, with ``index.csv`` written last (atomically).
        A folder whose index matches the expected metadata (and whose images all exist) is reused as is; anything
        else (an interrupted or different run) is rendered again.
    :param workers: rendering processes (``None``: all CPUs; ``<= 1``: in this process).
    :param progress: show a progress bar (rate and ETA) while rendering.
    :param limit: only the first ``limit`` rows (for tests); such a set is cached like any other and a later full
        call re-renders the folder.
    """
    metadata = stimulus_metadata(name, limit=limit)
    directory = stimulus_directory(name, cache_dir)
    index = directory / INDEX_FILE
    expected_csv = metadata.to_csv(index=False)
    if not _index_is_current(index, expected_csv, directory, metadata["filename"]):
        directory.mkdir(parents=True, exist_ok=True)
        index.unlink(missing_ok=True)  # an interrupted run must not leave a stale index behind
        for leftover in directory.glob(".*.tmp"):
            leftover.unlink(missing_ok=True)
        _render_all(
            name, metadata, directory, workers=(os.cpu_count() or 1) if workers is None else workers, progress=progress
        )
        temporary = directory / f".{INDEX_FILE}.{os.getpid()}.tmp"
        temporary.write_text(expected_csv)
        os.replace(temporary, index)
    return _stimulus_set(name, metadata, directory)


class LazyStimulusPaths(Mapping):
    """``stimulus_id -> path`` that renders (or loads) the set the first time a path is asked for."""

    def __init__(self, name: str, cache_dir: str | os.PathLike[str] | None, workers: int | None, progress: bool):
        self.name, self.cache_dir, self.workers, self.progress = name, cache_dir, workers, progress
        self._paths: Mapping | None = None

    def _resolve(self) -> Mapping:
        if self._paths is None:
            if self.cache_dir is None:
                raise RuntimeError(
                    f"no image files for {self.name}: this stimulus set was built without a cache_dir "
                    "(pass cache_dir= to reference_assembly/register_offline_data, or call generate_marques_stimuli)"
                )
            stimulus_set = generate_marques_stimuli(self.name, self.cache_dir, self.workers, self.progress)
            self._paths = stimulus_set.stimulus_paths
        return self._paths

    def __getitem__(self, stimulus_id):
        return self._resolve()[stimulus_id]

    def __iter__(self) -> Iterator:
        return iter(self._resolve())

    def __len__(self) -> int:
        return len(self._resolve())

    def __repr__(self) -> str:
        state = "resolved" if self._paths is not None else "not rendered yet"
        return f"LazyStimulusPaths({self.name!r}, cache_dir={self.cache_dir!r}, {state})"


def lazy_stimulus_set(
    name: str, cache_dir: str | os.PathLike[str] | None, workers: int | None = 2, progress: bool = True
):
    """The set's full metadata now; its images only when a path is first requested (``get_stimulus``)."""
    stimulus_set = _stimulus_set(name, stimulus_metadata(name), directory=None)
    stimulus_set.stimulus_paths = LazyStimulusPaths(name, cache_dir, workers, progress)
    return stimulus_set
