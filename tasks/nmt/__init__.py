"""Translation with fairseq (an optional extra: ``pip install '.[nmt]'``): the GNMT model and the
binarized-data pipeline. Nothing here imports fairseq until a translation task is used."""

import logging

# fairseq announces its optional dependencies (tensorboardX, ...) at import, at INFO
logging.getLogger("fairseq").setLevel(logging.WARNING)
