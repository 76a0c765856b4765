"""Suites every implementation of a storage or upstream Protocol passes."""
