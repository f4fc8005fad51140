"""Kratom Evidence: the Dagster code location and the command line."""
