"""The fixed choices of the distillation run's settings, in a module that loads nothing: the command line offers
them before torch is imported (train.cli), and the run's config checks against the same tuples (train.config)."""

STUDENT_TYPES = ("same", "bert", "distilbert")  # "same": the teacher's architecture
MIXED_PRECISIONS = ("auto", "no", "fp16", "bf16")  # "auto": bf16 or fp16 on a GPU, none on a CPU
DEVICES = ("auto", "cpu")  # "auto": the GPU when there is one
