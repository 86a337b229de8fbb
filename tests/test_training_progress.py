"""Progress output: a bar on a terminal, a few whole lines in a log."""

import io

from tqdm.auto import tqdm

from training.progress import LineProgress, progress


class Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_a_log_gets_about_ten_whole_lines_and_no_carriage_returns():
    log = io.StringIO()
    bar = progress(1000, "epoch 1/3", stream=log)
    assert isinstance(bar, LineProgress)
    for step in range(1000):
        bar.update(1)
        if step == 500:
            bar.set_postfix(loss="2.345")
    bar.close()
    lines = log.getvalue().splitlines()
    assert "\r" not in log.getvalue() and len(lines) == 10
    assert lines[0].startswith("epoch 1/3: step 100/1000 (") and lines[-1].startswith("epoch 1/3: step 1000/1000 (")
    assert "loss 2.345" in lines[-1] and "loss" not in lines[4]  # lines 1..5 come before the loss was set


def test_a_resumed_epoch_counts_from_where_it_stopped_and_the_last_line_is_the_total():
    log = io.StringIO()
    bar = progress(95, "translating", unit="batch", initial=40, stream=log)
    for _ in range(55):
        bar.update(1)
    bar.close()
    counts = [line.split(" (")[0] for line in log.getvalue().splitlines()]
    # A line every 9 batches (95 // 10) from the resumed position 40, and one at the end.
    assert counts == [f"translating: batch {n}/95" for n in (49, 58, 67, 76, 85, 94, 95)]


def test_a_terminal_gets_a_tqdm_bar_and_disabled_shows_nothing():
    assert isinstance(progress(10, "x", stream=Terminal()), tqdm)
    quiet = io.StringIO()
    bar = progress(10, "x", enabled=False, stream=quiet)
    bar.update(10)
    bar.close()
    assert quiet.getvalue() == ""
