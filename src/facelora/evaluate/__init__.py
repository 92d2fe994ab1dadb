"""Evaluate the saved LoRA files: the X/Y/Z grid of files x weights (grid.py, drawn by
gridimage.py, with A1111's axis syntax in axes.py and its infotext in infotext.py) and the
likeness of every cell's face to the person (likeness.py, heatmap.py; scoring.py ties them to a
project folder or to any folder of images).

The functions the CLI, the GUI and `facelora run` call:
    make_grid(project, GridOptions(...), progress=None) -> GridResult
    score_project(project, ScoreOptions(...), progress=None) -> LikenessReport
    score_folder(reference_dir, images_dir, ScoreOptions(...), progress=None) -> LikenessReport
    install_best(project, report, dest_dir, overwrite=False) -> Installed
progress is called as progress(done, total, what).
"""

from .grid import GridError, GridOptions, GridResult, make_grid
from .board import LikenessReport
from .likeness import LikenessError
from .scoring import Installed, ScoreOptions, install_best, score_folder, score_project

__all__ = [
    "GridError", "GridOptions", "GridResult", "make_grid", "LikenessError", "LikenessReport",
    "Installed", "ScoreOptions", "install_best", "score_folder", "score_project",
]
