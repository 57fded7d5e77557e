"""Benchmark library: what the ``benchmarks/*.py`` scripts run, importable and tested.

The scripts only parse their arguments and call these modules; tests import them (never a
script by path). Like :mod:`raynas.stages`, this package imports neither Ray nor MLflow: it
drives the stage programs Ray-free, exactly as the Ray trials do.

- :mod:`raynas.bench.recipe`: one seed's trial specs (a preset scaled to the benchmark), the
  coarse and fine stages driven as the search drives them, stand-alone training with the retrain
  recipe (:func:`~raynas.bench.recipe.train_alone`);
- :mod:`raynas.bench.stats`: percentiles, rank agreement, hypervolume and a seeded paired
  bootstrap, each undefined statistic ``None`` (never 0);
- :mod:`raynas.bench.equal_cost`: the search against random search at equal cost.
"""

from __future__ import annotations
