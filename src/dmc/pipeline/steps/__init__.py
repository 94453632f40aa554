"""One entry module per pipeline step: ``<step>.py`` holds the parser(s) of the step's ``dmc``
subcommand(s) (``add_parsers``) and the handler(s) (``run``).

:mod:`dmc.pipeline.cli` only assembles them; :mod:`dmc.pipeline.graph` names a step's entry
module, so a step's code deps in dvc.yaml are that module and its import closure (plus
:mod:`dmc.pipeline.params`, which validates params.yaml before any step runs): editing one
step's handler leaves the other stages current.
"""
