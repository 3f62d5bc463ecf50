"""Inventory context: one stock ledger with reservations and availability per channel (facade)."""
