"""benchmarks/joint_spread on hand-made people: the counts worked out by hand."""

import numpy as np

from higherhrnet_trt.benchmarks.joint_spread import count_spread, is_spread, track_summary


def _walker(x: float, top: float, height: float) -> np.ndarray:
    """(17, 3): a standing person, joints on a vertical line from ``top`` down ``height`` px."""
    k = np.zeros((17, 3))
    k[:, 0] = x
    k[:, 1] = top + np.linspace(0, height, 17)
    k[:, 2] = 0.8
    return k


def test_a_wrist_on_another_walker_is_spread_and_a_wide_stance_is_not():
    upright = _walker(100, 50, 90)
    assert not is_spread(upright)
    wide = upright.copy()
    wide[15, 0] = 100 + 60  # 60 px to the side of a 90 px tall person: below one height
    assert not is_spread(wide)
    far = upright.copy()
    far[10, 0] = 100 + 250  # a wrist 250 px away, on someone else
    assert is_spread(far)
    weak = far.copy()
    weak[10, 2] = 0.05  # below kpt_thr: not a drawn joint
    assert not is_spread(weak)
    small = _walker(100, 50, 20)
    small[10, 0] = 100 + 30  # more than one height sideways, but only 30 px
    assert not is_spread(small)


def test_count_over_run_json_records():
    records = [{"keypoints": k.ravel().tolist(), "score": s}
               for k, s in ((_walker(100, 50, 90), 0.7), (_walker(300, 40, 80), 0.5))]
    far = _walker(500, 50, 90)
    far[9, 0] = 200
    records.append({"keypoints": far.ravel().tolist(), "score": 0.64})
    assert count_spread(records) == {"people": 3, "spread": 1, "spread_scores": [0.64]}


def test_track_summary_counts_worked_out_by_hand():
    # ID 1 on 25 records, ID 2 on 3, ID 7 on 10; 4 records without an ID (-1)
    records = [{"track_id": 1}] * 25 + [{"track_id": 2}] * 3 + [{"track_id": 7}] * 10 + [{"track_id": -1}] * 4
    assert track_summary(records) == {"ids": 3, "long": 1, "short": 1, "longest": 25, "untracked": 4}
    assert track_summary([{"score": 0.5}]) is None  # a file written without --track
