"""Whether a run beats another beyond seed noise: per-run statistics over seeds and a paired comparison.

Two runs trained with the same seed share the student's initial weights and the data order, so their
difference on that seed removes most of what the seed changes; a paired t-test over those differences says
whether the mean gain could be seed noise. With 4 seeds (3 degrees of freedom) a gain is "beyond noise" at the
5% level when it is about 3.2 times the standard error of the differences.
"""
import math
import statistics
from dataclasses import dataclass

SIGNIFICANCE = 0.05  # two-sided


@dataclass(frozen=True)
class SeedStatistics:
    mean: float
    std: float  # sample standard deviation (0 for one run)
    min: float
    max: float

    @classmethod
    def of(cls, values):
        values = list(values)
        return cls(statistics.mean(values), statistics.stdev(values) if len(values) > 1 else 0.0,
                   min(values), max(values))


@dataclass(frozen=True)
class PairedComparison:
    """``run`` against ``reference``, seed by seed."""
    run: str
    reference: str
    differences: tuple  # run - reference, per seed
    p_value: float  # paired two-sided t-test; nan when it cannot be computed (one seed)

    @property
    def mean_gain(self):
        return statistics.mean(self.differences)

    @property
    def seeds_higher(self):
        return sum(difference > 0 for difference in self.differences)

    @property
    def verdict(self):
        """'gain beyond noise', 'loss beyond noise' or 'within noise' (also when it cannot be told)."""
        if not self.p_value < SIGNIFICANCE:  # nan included
            return 'within noise'
        return 'gain beyond noise' if self.mean_gain > 0 else 'loss beyond noise'


def paired_p_value(differences):
    """Two-sided p-value of a paired t-test whose per-pair differences are ``differences``."""
    if len(differences) < 2:
        return math.nan
    mean = statistics.mean(differences)
    spread = statistics.stdev(differences)
    if spread == 0:  # every seed moved by the same amount: no noise at all, or no change at all
        return 1.0 if mean == 0 else 0.0
    from scipy.stats import t as student_t
    statistic = mean / (spread / math.sqrt(len(differences)))
    return float(2 * student_t.sf(abs(statistic), len(differences) - 1))


def compare_paired(results, run, reference):
    """``results``: ``{run: [value per seed]}``, every list in the same seed order."""
    if len(results[run]) != len(results[reference]):
        raise ValueError(f'{run} has {len(results[run])} seeds and {reference} {len(results[reference])}: a paired '
                         'comparison needs the same seeds for both')
    differences = tuple(a - b for a, b in zip(results[run], results[reference]))
    return PairedComparison(run, reference, differences, paired_p_value(differences))
