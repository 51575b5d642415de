"""`python -m finetune text|image ...` is `adgen finetune ...`; it exists so that
`accelerate launch -m finetune ...` runs the same trainers on many GPUs and nodes."""

import sys

from cli.main import app

app(["finetune", *sys.argv[1:]], prog_name="python -m finetune")
