"""Bars from an exchange into the bar store, before the daily retrain reads them."""
