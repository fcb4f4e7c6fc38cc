"""The child's side of a drain: asked through a file, it writes one resume point at once."""

from __future__ import annotations

from pathlib import Path

import msgspec
import pytest

from digits_trainer.reports import HAND_BACK_FILE, ProgressReport, ResumePointReport
from tests.trainer.test_training import config_for, run
from tests.trainer.toy import write_dataset


@pytest.fixture(scope="module")
def toy_files(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """The toy dataset's files, written once for this module."""
    return write_dataset(tmp_path_factory.mktemp("toy"))


def config_with_points(toy_files, tmp_path: Path):
    """Two epochs with resume points on but not due by the clock for an hour."""
    config = config_for(toy_files, tmp_path, train_epochs=2, val_interval=1)
    return msgspec.structs.replace(
        config, resume_points=str(tmp_path / "points"), resume_every=3600.0
    )


def test_a_child_asked_to_hand_back_writes_one_point_at_its_next_metric_point(
    toy_files, tmp_path, monkeypatch
):
    """With the hand-back file in its folder, the child writes a resume point (marked asked) at
    its first metric point although none is due, and only that one."""
    monkeypatch.chdir(tmp_path)
    (tmp_path / HAND_BACK_FILE).touch()
    reports = run(config_with_points(toy_files, tmp_path))
    points = [r for r in reports if isinstance(r, ResumePointReport)]
    assert [p.asked for p in points] == [True]
    assert points[0].iteration == 1 and Path(points[0].path).is_file()


def test_without_the_file_no_point_is_written_before_it_is_due(toy_files, tmp_path, monkeypatch):
    """No hand-back file, no point due: no resume point; progress reports carry img/s."""
    monkeypatch.chdir(tmp_path)
    reports = run(config_with_points(toy_files, tmp_path))
    assert not [r for r in reports if isinstance(r, ResumePointReport)]
    speeds = [r.images_per_second for r in reports if isinstance(r, ProgressReport)]
    assert speeds and all(s is not None and s > 0 for s in speeds)
