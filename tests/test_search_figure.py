"""pareto.png reads at a glance: a labelled tick in every decade the costs span, and a y-range set by the
front and the references, with a collapsed trial left out and counted (issue 21)."""

import math

import pytest

from qconvert.search.front import SearchResult


def _result(trials, references=None, fp32=0.95):
    result = SearchResult(outdir="unused", cost="ebops", settings={"epochs": 3}, fp32={"val_accuracy": fp32},
                          references=references or {}, trials=trials, front=[], chosen=None)
    result.choose()
    return result


def _trial(number, ebops, acc):
    return {"number": number, "state": "COMPLETE", "params": {}, "ebops": ebops, "val_accuracy": acc}


def test_every_decade_the_costs_span_has_a_labelled_tick():
    # the chosen point and the reference sit above 10^6: the axis must run to 10^7 and label it
    trials = [_trial(0, 3.2e3, 0.80), _trial(1, 4.0e4, 0.90), _trial(2, 2.5e6, 0.945)]
    result = _result(trials, references={"6bit": {"ebops": 3.1e6, "val_accuracy": 0.95}})
    ax = result.figure().axes[0]
    assert ax.get_xlim() == pytest.approx((1e3, 1e7))
    ticks = [t for t in ax.get_xticks() if 1e3 <= t <= 1e7]
    assert [round(math.log10(t)) for t in ticks] == [3, 4, 5, 6, 7]


def test_a_collapsed_trial_on_the_front_does_not_stretch_the_y_range_and_is_noted():
    trials = [_trial(0, 500.0, 0.41), _trial(1, 4e3, 0.86), _trial(2, 2e4, 0.93), _trial(3, 9e4, 0.95)]
    result = _result(trials, references={"6bit": {"ebops": 2e5, "val_accuracy": 0.955}}, fp32=0.96)
    assert trials[0] in result.front  # the cheapest point is on the front, however bad
    ax = result.figure().axes[0]
    low, top = ax.get_ylim()
    assert 0.41 < low < 0.86 and top > 0.96
    notes = [t.get_text() for t in ax.texts]
    assert notes == [f"1 point(s) below {low:.2f} not shown"]


def test_nothing_is_left_out_when_the_front_is_close_together():
    trials = [_trial(0, 800.0, 0.90), _trial(1, 4e3, 0.93), _trial(2, 3e4, 0.94)]
    ax = _result(trials).figure().axes[0]
    low, _ = ax.get_ylim()
    assert low < 0.90 and not ax.texts
    assert ax.get_xlim() == pytest.approx((1e2, 1e5))
