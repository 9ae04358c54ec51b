-- Whether a version passed the activation floor when it was registered: true (credible
-- out-of-sample skill), false (never made active automatically, never "best"), NULL (registered
-- before the floor existed, or under a policy without one). The numbers behind the verdict are in
-- the version's kept_inactive or activated row of model_activations.
ALTER TABLE model_registry ADD COLUMN credible boolean;
