"""Evaluation: pure metric functions (``metrics``), readers of the original TOFU evaluation
logs (``tofu_logs``), and, separately, the runner that does the forward passes and generation.
"""
