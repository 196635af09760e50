"""The demo's statistics over seeds against scipy's own paired t-test and numpy's moments."""
import math

import numpy as np
import pytest
from scipy import stats

from mmdistkd.analysis.seed_comparison import SeedStatistics, compare_paired, paired_p_value


def test_seed_statistics_are_the_sample_moments():
    values = [0.098, 0.119, 0.105, 0.131]
    result = SeedStatistics.of(values)
    assert result.mean == pytest.approx(np.mean(values))
    assert result.std == pytest.approx(np.std(values, ddof=1))
    assert (result.min, result.max) == (0.098, 0.131)
    assert SeedStatistics.of([0.5]) == SeedStatistics(0.5, 0.0, 0.5, 0.5)


@pytest.mark.parametrize('run, reference', [
    ([0.16, 0.17, 0.15, 0.18], [0.10, 0.11, 0.12, 0.10]),  # a clear gain
    ([0.21, 0.19, 0.23, 0.18], [0.20, 0.21, 0.19, 0.20]),  # noise
    ([62.0, 55.5, 70.25, 48.0, 66.0], [64.0, 60.0, 71.0, 52.5, 66.5]),  # a small, consistent loss
])
def test_paired_p_value_is_scipys_paired_t_test(run, reference):
    expected = stats.ttest_rel(run, reference).pvalue
    comparison = compare_paired(dict(run=run, reference=reference), 'run', 'reference')
    assert comparison.p_value == pytest.approx(expected, rel=1e-9)
    assert comparison.mean_gain == pytest.approx(np.mean(np.subtract(run, reference)))
    assert comparison.seeds_higher == int(np.sum(np.subtract(run, reference) > 0))


def test_verdicts():
    gain = compare_paired(dict(a=[0.16, 0.17, 0.15, 0.18], b=[0.10, 0.11, 0.12, 0.10]), 'a', 'b')
    assert gain.verdict == 'gain beyond noise'
    loss = compare_paired(dict(a=[0.10, 0.11, 0.12, 0.10], b=[0.16, 0.17, 0.15, 0.18]), 'a', 'b')
    assert loss.verdict == 'loss beyond noise'
    noise = compare_paired(dict(a=[0.21, 0.19, 0.23, 0.18], b=[0.20, 0.21, 0.19, 0.20]), 'a', 'b')
    assert noise.verdict == 'within noise'


def test_degenerate_differences():
    # One seed: no test is possible, so no claim is made.
    one = compare_paired(dict(a=[0.2], b=[0.1]), 'a', 'b')
    assert math.isnan(one.p_value) and one.verdict == 'within noise'
    # No spread in the differences (scipy gives no p-value): the same gain on every seed is beyond any noise;
    # no change at all is within it.
    assert paired_p_value([0.05, 0.05, 0.05]) == 0.0
    assert paired_p_value([0.0, 0.0, 0.0]) == 1.0


def test_a_comparison_needs_the_same_seeds():
    with pytest.raises(ValueError, match='same seeds'):
        compare_paired(dict(a=[0.1, 0.2], b=[0.1]), 'a', 'b')
