"""Training: the orchestrators of ``tif finetune`` and ``tif unlearn`` and what they run on
(inputs, token streams, the trainer, checkpoints, precision, distributed runs, LoRA, the hub).

Import the orchestrators from ``tif_unlearn.train.pipeline``; this package imports nothing
eagerly so that the command line starts without loading torch.
"""
