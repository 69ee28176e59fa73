"""Evaluation: test-set metrics, bootstrap confidence intervals and paired significance tests.

Import the submodules (``ferlab.evaluate.metrics``, ``ferlab.evaluate.significance``) directly; this package
imports nothing so that importing one of them does not pull in the others' dependencies.
"""
