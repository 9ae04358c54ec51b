-- Baselines and "previous good version" look up a model's own activations on every check.
CREATE INDEX model_activations_model_action ON model_activations (model_id, action, activation_id);
