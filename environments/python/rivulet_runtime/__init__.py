"""Rivulet's Python function runtime: Fission's python-env contract on Flask + Granian."""
