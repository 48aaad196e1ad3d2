"""Citizen-facing web channel."""
