"""Clean logs: a quickstart-like demo run and a pretraining run print only the harness's own lines (no
third-party warning, table or bar, even under ``PYTHONWARNINGS=default``), a text tower that keeps fewer
layers than its folder says so in exactly one line, every long step writes one plain line per unit into
a batch log (stderr not a terminal), and :mod:`benchmark.progress` draws a bar only on a terminal."""

from __future__ import annotations

import contextlib
import io
import os
import re
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

from benchmark.progress import LineProgress, format_duration, library_bars_off, progress_bar

ROOT = Path(__file__).resolve().parents[1]
# what a third-party warning, log record or report leaves in the output
FOREIGN = re.compile(
    r"Warning|warn\(|warnings\.warn|site-packages|LOAD REPORT|UNEXPECTED|Some weights|Writing model shards"
    r"|Loading weights| - mmengine - | - (INFO|WARNING) - "
)


@dataclass
class Log:
    """A finished command's batch log: its stdout and stderr files, read back."""

    returncode: int
    stdout: str
    stderr: str


def start(args: list[str], log: Path) -> tuple[subprocess.Popen, Path]:
    """A command as a user's batch job runs it: stdout and stderr are files, not a terminal; every
    warning category shown (``PYTHONWARNINGS=default``, stricter than a user's default filters)."""
    env = {**os.environ, "PYTHONWARNINGS": "default", "OMP_NUM_THREADS": "1", "PYTHONPATH": str(ROOT)}
    with open(log.with_suffix(".out"), "w") as out, open(log.with_suffix(".err"), "w") as err:
        process = subprocess.Popen(
            [sys.executable, *args], cwd=ROOT, env=env, stdin=subprocess.DEVNULL, stdout=out, stderr=err
        )
    return process, log


def finish(process: subprocess.Popen, log: Path) -> Log:
    code = process.wait(timeout=600)
    return Log(code, log.with_suffix(".out").read_text(), log.with_suffix(".err").read_text())


@pytest.fixture(scope="module")
def logs(demo_root, tmp_path_factory):
    """The batch logs of a quickstart-like demo run and of a pretraining run, started together (each is
    mostly imports on one thread), and what writing the 4-layer BERT folder printed."""
    from recipes.pretraining.tiny_text import write_tiny_bert

    tmp = tmp_path_factory.mktemp("clean-logs")
    printed = io.StringIO()
    with contextlib.redirect_stdout(printed), contextlib.redirect_stderr(printed):
        bert = write_tiny_bert(demo_root, tmp / "bert4", layers=4)
    # one task per family: classification, segmentation (imports mmseg), detection (mmdet), zero-shot (skipped)
    demo = [
        "run_benchmark.py",
        *("--encoder", "random:resnet_tiny", "--suite", "demo", "--demo-root", str(demo_root)),
        *("--tasks", "covidx_cls,siim_seg,rsna_det,rsna_zeroshot", "--fractions", "100", "--seeds", "0"),
        *("--limit", "10", "--seg-max-epochs", "1", "--workers", "0"),
        *("--output", str(tmp / "out"), "--cache-dir", str(tmp / "cache")),
    ]
    pretraining = [
        *("-m", "recipes.pretraining", "--method", "convirt", "--data-root", str(demo_root)),
        *("--text-encoder", str(bert), "--hp", "text_layers=2", "--hp", "proj_hidden=32"),
        *("--arch", "resnet_tiny", "--image-init", "random", "--resize", "40", "--crop", "32", "--upsample", "0"),
        *("--max-words", "32", "--batch-size", "4", "--limit", "12", "--epochs", "2"),
        *("--workers", "0", "--device", "cpu", "--output", str(tmp / "run")),
    ]
    running = [start(demo, tmp / "demo"), start(pretraining, tmp / "pretraining")]
    demo_log, pretraining_log = (finish(*r) for r in running)
    return {"demo": demo_log, "pretraining": pretraining_log, "bert": bert, "printed": printed.getvalue(), "tmp": tmp}


def foreign_lines(text: str) -> list[str]:
    return [line for line in text.splitlines() if FOREIGN.search(line)]


def test_a_quickstart_like_demo_run_prints_only_its_own_lines(logs):
    done = logs["demo"]
    assert done.returncode == 0, done.stderr[-3000:]
    assert foreign_lines(done.stdout + done.stderr) == []
    # a batch log gets no bar and nothing else on stderr: one line per unit on stdout
    assert done.stderr == "", done.stderr[-3000:]
    lines = done.stdout.splitlines()
    units = [line for line in lines if re.match(r"\[\d/3\] ", line)]
    assert [u.split(":")[0] for u in units] == [
        "[1/3] covidx_cls 100% seed 0",
        "[2/3] siim_seg 100% seed 0",
        "[3/3] rsna_det 100% seed 0",
    ]
    assert all(re.search(r": \w+ \d+\.\d\d \(.*\d s\) -> ", u) for u in units), units
    assert sum("zero-shot tasks not applicable (rsna_zeroshot)" in line for line in lines) == 1


def test_pretraining_keeps_fewer_layers_in_one_line_and_logs_one_line_per_epoch(logs):
    from safetensors.torch import load_file

    assert logs["printed"] == ""  # no "Writing model shards" bar from save_pretrained (library_bars_off)
    tensors = load_file(str(logs["bert"] / "model.safetensors"))
    dropped = sum(1 for k in tensors if k.startswith(("encoder.layer.2.", "encoder.layer.3.")))
    assert dropped == 32  # 16 tensors per BERT layer
    done = logs["pretraining"]
    assert done.returncode == 0, done.stderr[-3000:]
    assert foreign_lines(done.stdout + done.stderr) == []
    assert done.stderr == "", done.stderr[-3000:]  # no bar in a batch log
    lines = done.stdout.splitlines()
    assert [line for line in lines if "BERT layers" in line] == [
        f"text tower: kept 2 of 4 BERT layers as the method specifies ({dropped} tensors of layers 2-3 not loaded)"
    ]
    epochs = [line for line in lines if line.startswith("epoch ")]
    pattern = r"epoch {}/2: step {}/6, train loss \d+\.\d{{4}}, val loss \d+\.\d{{4}}( \(best\))?, \d+:\d\d elapsed"
    assert len(epochs) == 2, lines
    assert re.fullmatch(pattern.format(1, 3) + r", ETA \d+:\d\d", epochs[0]), epochs[0]
    assert re.fullmatch(pattern.format(2, 6), epochs[1]), epochs[1]  # the last epoch: nothing left to estimate
    assert "(best)" in epochs[0]  # the first validation is the best so far
    assert lines[-1].startswith(f"wrote {logs['tmp'] / 'run'}")


class Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_progress_is_a_bar_on_a_terminal_and_lines_in_a_batch_log():
    from tqdm.auto import tqdm

    log = io.StringIO()
    bar = progress_bar(12, "demo", "img", stream=log)
    assert isinstance(bar, LineProgress)
    bar.update(4)
    bar.set_postfix(loss="0.5")
    bar.update(8)
    bar.close()
    lines = log.getvalue().splitlines()
    assert len(lines) == 2 and "\r" not in log.getvalue()
    assert re.fullmatch(r"demo: 4/12 img \(33%\), 0:0\d elapsed, ETA 0:\d\d", lines[0]), lines[0]
    assert re.fullmatch(r"demo: 12/12 img \(100%\), 0:0\d elapsed, loss=0\.5", lines[1]), lines[1]

    screen = Terminal()
    bar = progress_bar(3, "demo", "img", stream=screen)
    assert isinstance(bar, tqdm) and not bar.disable
    bar.update(3)
    bar.close()
    assert "\r" in screen.getvalue() and "3/3" in screen.getvalue()

    for stream in (io.StringIO(), Terminal()):
        bar = progress_bar(3, "demo", "img", enabled=False, stream=stream)
        bar.update(3)
        bar.close()
        assert stream.getvalue() == ""


def test_line_progress_timing_throttle_and_eta():
    now = [100.0]
    log = io.StringIO()
    bar = LineProgress(10, "cache", "img", every=30, stream=log, clock=lambda: now[0])
    for t, n in ((10, 2), (35, 2), (50, 2), (70, 2), (80, 2)):
        now[0] = 100.0 + t
        bar.update(n)
    assert log.getvalue().splitlines() == [
        "cache: 4/10 img (40%), 0:35 elapsed, ETA 0:52",  # the first line once 30 s have passed
        "cache: 8/10 img (80%), 1:10 elapsed, ETA 0:18",  # 35 s after it
        "cache: 10/10 img (100%), 1:20 elapsed",  # the last update always writes its line
    ]
    resumed = LineProgress(10, "x", every=0, initial=6, stream=log, clock=lambda: now[0])
    now[0] += 20
    resumed.update(2)  # 2 done in this run in 20 s: 2 left take 20 s more
    assert log.getvalue().splitlines()[-1] == "x: 8/10 item (80%), 0:20 elapsed, ETA 0:20"
    assert [format_duration(s) for s in (0, 59.6, 61, 3600, 3725)] == ["0:00", "1:00", "1:01", "1:00:00", "1:02:05"]


def test_library_bars_off_restores_the_libraries_setting():
    from transformers.utils import logging as hf_logging

    before = hf_logging.is_progress_bar_enabled()  # other tests' code may have turned it off for good
    try:
        hf_logging.enable_progress_bar()
        with library_bars_off():
            assert not hf_logging.is_progress_bar_enabled()
        assert hf_logging.is_progress_bar_enabled()  # on before, on after
        hf_logging.disable_progress_bar()
        with library_bars_off():
            pass
        assert not hf_logging.is_progress_bar_enabled()  # off before, off after
    finally:
        (hf_logging.enable_progress_bar if before else hf_logging.disable_progress_bar)()
