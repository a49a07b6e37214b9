"""Progress of the long commands (project/progress.py): a bar redrawn in place on a terminal, one plain line per step
when piped, nothing with -v 0 — for the helper and for the commands that use it."""

from __future__ import annotations

import io
import os
import re

import pytest
from django.core.management import call_command

from project.progress import progress


class Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def _steps(total: int | None, stream: io.StringIO, verbosity: int) -> str:
    with progress(total, "work", stream, verbosity) as bar:
        for i in range(3):
            bar.update(1, note=f"step {i}")
    return stream.getvalue()


def test_piped_output_is_one_plain_line_per_step():
    text = _steps(3, io.StringIO(), verbosity=1)
    assert text.splitlines() == ["work: 1/3  step 0", "work: 2/3  step 1", "work: 3/3  step 2"]
    assert "\r" not in text


def test_an_unknown_total_counts_the_steps_done():
    assert _steps(None, io.StringIO(), verbosity=1).splitlines()[-1] == "work: 3  step 2"


def test_verbosity_zero_prints_nothing_piped_or_on_a_terminal():
    assert _steps(3, io.StringIO(), verbosity=0) == ""
    assert _steps(3, Terminal(), verbosity=0) == ""


def test_a_terminal_gets_a_bar_redrawn_in_place_not_a_line_per_step():
    text = _steps(3, Terminal(), verbosity=1)
    assert "\r" in text and "3/3" in text
    assert text.count("\n") <= 1  # the finished bar is left on its line; the steps redrew it
    assert "step 2" in text  # the last step's note is shown beside the bar


def test_verbosity_two_on_a_terminal_keeps_each_note_above_the_bar():
    text = _steps(3, Terminal(), verbosity=2)
    assert all(f"step {i}\n" in text for i in range(3)) and "3/3" in text


def test_a_command_stdout_wrapper_is_drawn_through_not_line_wrapped():
    from django.core.management.base import OutputWrapper

    terminal = Terminal()
    with progress(2, "work", OutputWrapper(terminal), verbosity=1) as bar:
        bar.update(2)
    assert "\r" in terminal.getvalue() and terminal.getvalue().count("\n") <= 1


@pytest.mark.django_db
def test_generate_platform_prints_one_line_per_step_and_reaches_its_total_and_nothing_at_verbosity_zero():
    out = io.StringIO()
    call_command("generate_platform", "--users", "40", "--tournaments", "3", "--seed", "31", stdout=out)
    steps = re.findall(r"^generate_platform: (\d+)/(\d+)  ", out.getvalue(), re.MULTILINE)
    assert steps and [int(done) for done, _ in steps] == list(range(1, len(steps) + 1))
    assert {int(total) for _, total in steps} == {len(steps)}  # the total announced is the steps taken

    quiet = io.StringIO()
    call_command("generate_platform", "--users", "40", "--tournaments", "3", "--seed", "32", stdout=quiet, verbosity=0)
    assert quiet.getvalue() == ""


@pytest.mark.django_db
def test_reconcile_prints_one_line_per_step_up_to_its_total():
    call_command("generate_platform", "--users", "40", "--tournaments", "3", "--seed", "33", verbosity=0)
    out = io.StringIO()
    call_command("reconcile_user_stats", "--fix", "--chunk-users", "16", stdout=out)
    steps = re.findall(r"^reconcile: (\d+)/(\d+)  ", out.getvalue(), re.MULTILINE)
    assert [int(done) for done, _ in steps] == list(range(1, len(steps) + 1))
    assert {int(total) for _, total in steps} == {len(steps)} and len(steps) > 3  # several user chunks

    quiet = io.StringIO()
    call_command("reconcile_user_stats", stdout=quiet, verbosity=0)
    assert quiet.getvalue() == ""


ATP = "/work/shared/data/atp"


# transaction=True: the import commits as in production, and the teardown truncates instead of checking two seasons
# of deferred foreign keys inside the test's transaction (which can pass the 5 s statement timeout on a busy machine).
@pytest.mark.django_db(transaction=True)
@pytest.mark.skipif(not os.path.exists(f"{ATP}/atp_tour_matches.csv.gz"), reason="ATP data not present")
def test_import_atp_prints_one_line_per_season():
    out = io.StringIO()
    call_command("import_atp", ATP, "--from-year", "2023", "--to-year", "2024", stdout=out)
    lines = re.findall(r"^import_atp: seasons: (\d)/2  season (\d+):", out.getvalue(), re.MULTILINE)
    assert lines == [("1", "2023"), ("2", "2024")]
