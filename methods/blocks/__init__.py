"""Building blocks several methods share, one name each: objectives, adversarial sets, importances."""
