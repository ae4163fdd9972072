"""The tests each mutated file's mutants run (mutation.py), fast hand-computed ones first;
mutation.py adds ``-m "not slow"``."""

from __future__ import annotations

UNIT = "tests/unit/"
LOSS_TESTS = [UNIT + f for f in ("test_losses.py", "test_losses_mutants.py", "test_targeted.py")]
METHOD_TESTS = [UNIT + "test_targeted.py", UNIT + "test_method_identities.py"]
STREAM_TESTS = [UNIT + "test_streams.py", UNIT + "test_method_identities.py"]
METRIC_TESTS = [
    UNIT + f for f in ("test_metrics.py", "test_metric_directions.py", "test_tofu_logs.py")
]
ENCODING_TESTS = [
    UNIT + f for f in ("test_encoding.py", "test_encoding_tokenizers.py", "test_chat_dates.py")
]
DEFAULT_TESTS = {
    "src/tif_unlearn/losses.py": LOSS_TESTS + [UNIT + "test_method_identities.py"],
    "src/tif_unlearn/tokens.py": LOSS_TESTS + [UNIT + "test_method_identities.py"],
    **{f"src/tif_unlearn/methods/{name}.py": METHOD_TESTS + [UNIT + "test_method_options.py"]
       for name in ("__init__", "base", "ga", "graddiff", "idkdpo", "npo", "simnpo", "tif")},
    "src/tif_unlearn/evaluate/metrics.py": METRIC_TESTS,
    "src/tif_unlearn/evaluate/leak.py": [UNIT + f for f in ("test_leak.py", "test_leak_partial.py",
                                                            "test_leak_mutants.py")],
    "src/tif_unlearn/evaluate/scoring.py": [UNIT + "test_scoring_mutants.py",
                                            UNIT + "test_scored_token_stats.py",
                                            "tests/integration/test_runner_scoring.py"],
    "src/tif_unlearn/evaluate/generation.py": [
        UNIT + "test_generation_mutants.py", "tests/integration/test_runner_generation.py",
        "tests/integration/test_early_exit_generation.py",
        "tests/integration/test_generation_and_privleak.py"
        "::test_batched_generation_equals_one_prompt_at_a_time"],
    "src/tif_unlearn/evaluate/muse.py": [
        UNIT + "test_muse_mutants.py", "tests/integration/test_generation_and_privleak.py"
        "::test_privleak_sees_the_memorized_forget_set_as_members"],
    "src/tif_unlearn/evaluate/tofu.py": [UNIT + "test_tofu_mutants.py",
                                         UNIT + "test_benchmark_walk.py"],
    "src/tif_unlearn/evaluate/qa_scoring.py": [UNIT + "test_leak.py",
                                               UNIT + "test_qa_scoring_mutants.py"],
    "src/tif_unlearn/train/streams.py": STREAM_TESTS,
    "src/tif_unlearn/data/batches.py": [UNIT + "test_batches.py", *STREAM_TESTS],
    "src/tif_unlearn/data/encoding.py": ENCODING_TESTS,
    "src/tif_unlearn/train/schedule.py": [UNIT + "test_train_mutants.py", UNIT + "test_presets.py"],
    "src/tif_unlearn/train/precision.py": [UNIT + "test_train_mutants.py", UNIT + "test_cpu_flags.py",
                                           UNIT + "test_hardware_checks.py"],
    "src/tif_unlearn/train/checkpoints.py": [UNIT + "test_train_mutants.py"],
    "src/tif_unlearn/train/trainer.py": [UNIT + "test_train_mutants.py",
                                         UNIT + "test_deepspeed_reference.py"],
    **{f"src/tif_unlearn/identify/{name}.py": [UNIT + "test_learned_mutants.py",
                                               UNIT + "test_identify_whole_facts.py"]
       for name in ("learned", "learned_focus")},
    "src/tif_unlearn/identify/learned_fit.py": [UNIT + "test_learned_mutants.py",
                                                UNIT + "test_identify_learned_lm.py"],
    "src/tif_unlearn/identify/learned_model.py": [UNIT + "test_learned_mutants.py"],
    "src/tif_unlearn/data/annotations.py": [UNIT + "test_annotations_mutants.py",
                                            UNIT + "test_data_loaders.py"],
}  # fmt: skip
