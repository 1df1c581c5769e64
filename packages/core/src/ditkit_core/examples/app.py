"""The toy 2D app of the ``ditkit`` command (``ditkit toy2d fit|sample|eval|distill``)."""

from ditkit_core.app import App

APP = App(
    name="toy2d",
    help="toy 2D flow matching: sets of 2D points (checkerboard, moons, eight Gaussians)",
    config="apps/toy2d/configs/default.yaml",
    pretrained="apps/toy2d/pretrained",
    commands={
        "sample": "ditkit_core.examples.toy2d:sample_command",
        "eval": "ditkit_core.examples.toy2d:eval_command",
        "demo": "ditkit_core.examples.toy2d:demo_command",
    },
)
