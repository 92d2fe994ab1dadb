"""What a kohya_ss user looks for beside the Start button: "Print training command" (the facelora
command and sd-scripts' `accelerate launch train_network.py ...` of the project's settings) and
TensorBoard over the project's logs."""

from __future__ import annotations

import atexit
import shlex
import socket
import subprocess
import sys
import tomllib
from pathlib import Path
from typing import Any

import gradio as gr

from ...config import TrainConfig
from ...config.kohya import export_kohya
from ...project import Project
from ..common import friendly, note
from ..i18n import T, tr
from ..workspace import Workspace

TENSORBOARD_PORT = 6006
_boards: dict[Path, tuple[subprocess.Popen, int]] = {}  # one TensorBoard per log folder


def kohya_args(cfg: TrainConfig, project_root: Path) -> list[str]:
    """sd-scripts' arguments for the settings (the names and values of the Kohya TOML export)."""
    flat: dict[str, Any] = {}
    for section in tomllib.loads(export_kohya(cfg, project_root)).values():
        flat.update(section)
    args: list[str] = []
    for key, value in flat.items():
        if value is True:
            args.append(f"--{key}")
        elif isinstance(value, list):
            args += [f"--{key}", *map(str, value)]
        elif value is not False:
            args.append(f"--{key}={value}")
    return args


def commands(p: Project) -> str:
    """The training command lines of the project's current settings."""
    cfg = p.train_config()
    if not cfg.output_name:
        cfg = cfg.model_copy(update={"output_name": p.settings().trigger})
    kohya = ["accelerate launch --num_cpu_threads_per_process=2 train_network.py",
             *map(shlex.quote, kohya_args(cfg, p.root))]
    return ("# " + T("facelora (the parameters are in {file}):", file=p.config_path)
            + f"\nfacelora train {shlex.quote(str(p.root))}\n\n"
            + "# " + tr("Kohya's sd-scripts, the same settings:") + "\n" + " \\\n    ".join(kohya) + "\n")


def _free_port(first: int) -> int:
    for port in range(first, first + 50):
        with socket.socket() as s:
            try:
                s.bind(("127.0.0.1", port))
            except OSError:
                continue
            return port
    raise OSError("no free port for TensorBoard")


def tensorboard(p: Project) -> tuple[str, int]:
    """TensorBoard over the project's logging_dir on 127.0.0.1 (started once, ended with the GUI)."""
    logdir = (p.root / p.train_config().logging_dir).resolve()
    running = _boards.get(logdir)
    if running and running[0].poll() is None:
        return str(logdir), running[1]
    port = _free_port(TENSORBOARD_PORT)
    child = subprocess.Popen([sys.executable, "-m", "tensorboard.main", "--logdir", str(logdir), "--host",
                              "127.0.0.1", "--port", str(port)], stdin=subprocess.DEVNULL,
                             stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    _boards[logdir] = (child, port)
    return str(logdir), port


@atexit.register
def _stop_boards() -> None:
    for child, _ in _boards.values():
        if child.poll() is None:
            child.terminate()


def build(ws: Workspace, current: gr.State) -> None:
    """The buttons and the command box, inside the Train tab."""
    with gr.Row():
        print_btn = gr.Button("Print training command", size="sm", elem_id="print-command")
        board_btn = gr.Button("TensorBoard", size="sm", elem_id="tensorboard")
    board = gr.HTML(elem_id="tensorboard-link")
    command = gr.Textbox(label="Training command", lines=6, max_lines=30, interactive=False, visible=False,
                         elem_id="train-command", buttons=["copy"])

    @friendly(outputs=2)
    def show_command(project_name: str):
        return "", gr.update(value=commands(ws.open(project_name)), visible=True)

    @friendly()
    def open_board(project_name: str) -> str:
        logdir, port = tensorboard(ws.open(project_name))
        url = f"http://127.0.0.1:{port}/"
        return (note(T("TensorBoard shows {logdir} (it may take a few seconds to start):", logdir=logdir), "ok")
                + f'<a href="{url}" target="_blank" id="tensorboard-url">{url}</a>')

    print_btn.click(show_command, [current], [board, command])
    board_btn.click(open_board, [current], [board])
