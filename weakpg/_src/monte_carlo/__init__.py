"""The ``optax.monte_carlo`` API of optax 0.2.4, built on weakpg's estimators."""
