"""Audits: measures that train models (U-LiRA's shadows, relearn time) and the whole-model measures of a run."""
