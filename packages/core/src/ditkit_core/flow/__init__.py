"""Flow matching: probability paths, time samplers, losses, CFG condition dropout, OT pairing."""

from ditkit_core.flow.loss import drop_conditions, masked_mse, ot_pair
from ditkit_core.flow.path import AffinePath, CosinePath, LinearPath, PathSample
from ditkit_core.flow.time import TimeSampler, length_shift, logit_normal, mode, shift_time, uniform

__all__ = [
    "AffinePath",
    "CosinePath",
    "LinearPath",
    "PathSample",
    "TimeSampler",
    "drop_conditions",
    "length_shift",
    "logit_normal",
    "masked_mse",
    "mode",
    "ot_pair",
    "shift_time",
    "uniform",
]
