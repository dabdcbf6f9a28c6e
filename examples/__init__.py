"""Simulated services and a timeline recorder used by every example on the site."""
