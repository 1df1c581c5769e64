"""Small end-to-end examples built only on the core (the ``toy2d`` app)."""
