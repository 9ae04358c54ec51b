"""Statistics for deciding between models on noisy data (promotion, activation, rollback)."""
