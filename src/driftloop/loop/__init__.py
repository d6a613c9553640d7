"""The closed loop: the controller that turns monitoring signals into retrains and rollouts."""
