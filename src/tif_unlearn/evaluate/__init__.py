"""Evaluation: pure metric functions (``metrics``), readers of the original TOFU evaluation
logs (``tofu_logs``), and, separately, the model work: batched forward passes (``scoring``)
and generation (``generation``).
"""
