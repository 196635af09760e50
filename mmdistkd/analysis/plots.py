"""The tools' plots, written as PNG files (matplotlib's Agg backend: no display needed on training machines)."""
import contextlib
import statistics


@contextlib.contextmanager
def png_figure(out_file, figsize=(7, 4), dpi=120):
    """Axes to draw on; on exit the figure is laid out, written to ``out_file`` and closed."""
    import matplotlib
    matplotlib.use('Agg')
    import matplotlib.pyplot as plt

    figure, axes = plt.subplots(figsize=figsize)
    try:
        yield axes
        axes.grid(alpha=0.3)
        figure.tight_layout()
        figure.savefig(out_file, dpi=dpi)
    finally:
        plt.close(figure)


def line_plot(series, out_file, xlabel, ylabel, title=None, legend_title=None, log_y=False, ylim=None,
              marker=None, xticks=None, figsize=(7, 4), dpi=120):
    """One line per ``{label: [(x, y), ...]}`` entry (a legend unless the only label is None)."""
    with png_figure(out_file, figsize, dpi) as axes:
        for label, points in series.items():
            axes.plot(*zip(*points), marker=marker, label=label)
        axes.set_xlabel(xlabel)
        axes.set_ylabel(ylabel)
        if log_y:
            axes.set_yscale('log')
        if ylim is not None:
            axes.set_ylim(*ylim)
        if xticks is not None:
            axes.set_xticks(xticks)
        if list(series) != [None]:
            axes.legend(title=legend_title)
        if title:
            axes.set_title(title)


def per_seed_plot(results, seeds, out_file, ylabel, figsize=(7, 4), dpi=120):
    """``{run: [value per seed]}`` with runs as columns: one line per seed through the runs (a run trained once,
    the teacher, as a point) and each run's mean as a bar, so that a gain on every seed shows as lines that all
    rise."""
    names = list(results)
    columns = [index for index, name in enumerate(names) if len(results[name]) == len(seeds)]
    with png_figure(out_file, figsize, dpi) as axes:
        for position, seed in enumerate(seeds):
            axes.plot(columns, [results[names[index]][position] for index in columns], marker='o', alpha=0.7,
                      label=f'seed {seed}')
        for index, name in enumerate(names):
            if len(results[name]) != len(seeds):
                axes.scatter([index] * len(results[name]), results[name], color='black', marker='s')
            axes.hlines(statistics.mean(results[name]), index - 0.25, index + 0.25, color='black')
        axes.set_xticks(range(len(names)), names)
        axes.set_ylabel(ylabel)
        axes.legend(fontsize='small')


def plot_dpk_ratios(ratios, out_file, title=None):
    """DPK's prior ratio ``pi`` per stage (``{stage: [(step, pi), ...]}``) against the training step."""
    short = max(len(points) for points in ratios.values()) < 50
    line_plot(dict(sorted(ratios.items())), out_file, 'iteration', 'prior ratio pi = 1 - CKA', title=title,
              legend_title='stage', ylim=(0, 1), marker='.' if short else None)
