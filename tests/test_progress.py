"""Progress of long passes (tfclassify.core.progress): a bar at a terminal, lines in a
log, nothing when quiet; and convert's scan and write passes as users see them."""

from __future__ import annotations

import contextlib
import io
import multiprocessing
import pickle
import re
import sys

import pytest
from commands import Terminal, last_lines, run_in_process

from tfclassify.core import progress
from tfclassify.core.progress import ProcessBar, Progress, given_or_new


class Clock:
    """Seconds that pass only when told."""

    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def test_a_terminal_gets_a_bar_with_images_per_second():
    out = Terminal()
    with Progress("scan", 10, file=out, show_bytes=True) as bar:
        for _ in range(10):
            bar.update(1, nbytes=2_000_000)
    drawn = out.getvalue()
    assert "scan" in drawn and "10/10" in drawn and "img/s" in drawn and "MB/s" in drawn
    assert "\r" in drawn  # redrawn in place


def test_a_log_gets_a_line_every_interval_and_the_last_line_once():
    out, clock = io.StringIO(), Clock()
    with Progress("infer batch", 100, file=out, clock=clock, interval=10) as bar:
        for _ in range(100):
            clock.now += 0.5
            bar.update(1)
    lines = out.getvalue().splitlines()
    assert lines == [
        "infer batch: 20/100 img (20%), 2.0 img/s, 10.0 s",
        "infer batch: 40/100 img (40%), 2.0 img/s, 20.0 s",
        "infer batch: 60/100 img (60%), 2.0 img/s, 30.0 s",
        "infer batch: 80/100 img (80%), 2.0 img/s, 40.0 s",
        # Not a line at 100% and then the last one: the last line only.
        "infer batch: 100/100 img, 2.0 img/s, 50.0 s",
    ]
    assert "\r" not in out.getvalue()


def test_a_log_line_without_a_total_and_with_bytes_resumed_items_not_in_the_rate():
    out, clock = io.StringIO(), Clock()
    with Progress("scan", file=out, clock=clock, initial=30, show_bytes=True) as bar:
        clock.now = 2.0
        bar.update(10, nbytes=4_000_000)
    assert out.getvalue() == "scan: 40 img, 5.0 img/s, 2.0 MB/s, 2.0 s\n"


@pytest.mark.parametrize("stream", [Terminal, io.StringIO])
def test_quiet_shows_nothing_and_still_counts(stream):
    out = stream()
    with Progress("write", 5, file=out, quiet=True) as bar:
        bar.update(5)
    assert out.getvalue() == "" and bar.n == 5


def test_a_pass_cut_short_or_not_left_prints_no_last_line():
    out = io.StringIO()
    with pytest.raises(KeyError), Progress("write", 5, file=out) as bar:
        bar.update(2)
        raise KeyError("the error that ends it says what happened")
    with Progress("[small_cnn] batch run 1", 5, file=out, leave=False) as bar:
        bar.update(5)  # its caller prints its own line
    assert out.getvalue() == ""


def test_closing_twice_prints_the_last_line_once():
    out = io.StringIO()
    bar = Progress("scan", 1, file=out)
    bar.update()
    bar.close()
    bar.close()
    assert last_lines(out.getvalue(), "scan") == [out.getvalue().strip()]


def test_the_bar_follows_stderr_as_it_is_when_made():
    with contextlib.redirect_stderr(Terminal()) as err:
        Progress("infer", 3).close()
    assert "infer" in err.getvalue()
    with contextlib.redirect_stderr(io.StringIO()) as err:
        Progress("infer", 3, quiet=True).close()
        Progress("infer", 0).close()
    assert err.getvalue().startswith("infer: 0/0 img, 0.0 img/s, ")
    assert len(err.getvalue().splitlines()) == 1


def test_given_or_new_sets_a_callers_total_and_leaves_it_open():
    out = io.StringIO()
    mine = Progress("measure int8", file=out)
    with given_or_new(mine, "infer pipelined", 7) as bar:
        assert bar is mine and bar.total == 7
        bar.update(7)
    assert out.getvalue() == ""  # the caller closes it
    mine.close()
    assert last_lines(out.getvalue(), "measure int8")[0].startswith("measure int8: 7/7 img, ")
    with (
        contextlib.redirect_stderr(io.StringIO()) as err,
        given_or_new(None, "infer pipelined", 2) as bar,
    ):
        bar.update(2)
    assert last_lines(err.getvalue(), "infer pipelined")[0].startswith("infer pipelined: 2/2 ")


# ---------------------------------------------------------------- across a process


def test_a_process_bar_moves_with_its_token_and_closes_at_its_total():
    with (
        contextlib.redirect_stderr(io.StringIO()) as err,
        ProcessBar("write", show_bytes=True) as bar,
    ):
        token = pickle.loads(pickle.dumps(bar.token))  # as a DoFn carries it
        progress.advance(token, 3, 100, total=5)
        progress.advance(token, 2, 100, total=5)
        assert last_lines(err.getvalue(), "write")  # at its total: at once
        progress.advance(token, 1)  # a retried bundle's: counted, not printed
        progress.advance(None, 4)  # no bar: nothing
    lines = last_lines(err.getvalue(), "write")
    assert len(lines) == 1 and lines[0].startswith("write: 5/5 img, ")


def test_a_process_bar_whose_work_ran_elsewhere_draws_nothing():
    with contextlib.redirect_stderr(Terminal()) as err:
        with ProcessBar("scan", 10) as bar:
            token = bar.token
        progress.advance(token, 10)  # closed: nothing
    assert err.getvalue() == ""


def _advance_in_child(token: str) -> None:
    progress.advance(token, 10)
    sys.exit(0)


@pytest.mark.skipif(
    "fork" not in multiprocessing.get_all_start_methods(), reason="needs fork to copy the bar"
)
def test_a_forked_worker_does_not_draw_its_parents_bar(capfd):
    """A worker forked with a copy of the open bars (a multi-process runner) leaves them
    to the process that opened them."""
    with ProcessBar("scan", 10) as bar:
        child = multiprocessing.get_context("fork").Process(
            target=_advance_in_child, args=(bar.token,)
        )
        child.start()
        child.join()
    assert child.exitcode == 0
    assert "scan" not in capfd.readouterr().err


# ---------------------------------------------------------------- convert


def _convert(class_tree: str, out: str, *flags: str):
    return run_in_process(
        "tfclassify.convert", "--input_dir", class_tree, "--output_dir", out, *flags
    )


def test_convert_in_a_log_prints_each_pass_once_with_its_images(class_tree, tmp_path):
    p = _convert(class_tree, str(tmp_path / "out"))
    assert p.returncode == 0, p.stderr
    accepted = int(re.match(r"(\d+) images", p.stdout).group(1))
    scan, write = last_lines(p.stderr, "scan"), last_lines(p.stderr, "write")
    assert len(scan) == 1 and len(write) == 1, p.stderr
    done, total = scan[0].split()[1].split("/")
    assert done == total and int(total) >= accepted  # every file listed was scanned
    assert write[0].startswith(f"write: {accepted}/{accepted} img, ") and "MB/s" in write[0]
    assert "\r" not in p.stderr


def test_convert_at_a_terminal_draws_bars_and_quiet_draws_none(class_tree, tmp_path):
    from tfclassify.convert import main

    argv = ["convert", "--input_dir", class_tree, "--output_dir"]
    with contextlib.redirect_stderr(Terminal()) as err, contextlib.redirect_stdout(io.StringIO()):
        assert main([*argv, str(tmp_path / "a")]) == 0
    drawn = err.getvalue()
    assert "scan" in drawn and "write" in drawn and "img/s" in drawn

    with contextlib.redirect_stderr(Terminal()) as err, contextlib.redirect_stdout(io.StringIO()):
        assert main([*argv, str(tmp_path / "b"), "--quiet"]) == 0
    assert "img" not in err.getvalue() and "scan" not in err.getvalue()
