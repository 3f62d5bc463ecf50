"""Catalog context: one product catalogue for every channel (facade)."""
