"""--device: auto picks a visible GPU, else the CPU; a GPU that is not there fails in one line;
evaluation reports where it ran."""

from __future__ import annotations

import pytest

from tif_unlearn.devices import on_device, one_gpu_notice, pick_device
from tif_unlearn.errors import TifError
from tif_unlearn.train.precision import EvalPrecision, apply_eval_precision


@pytest.mark.parametrize(
    ("requested", "cuda", "expected"),
    [
        ("auto", True, "cuda"),
        ("auto", False, "cpu"),
        ("cpu", True, "cpu"),
        ("cuda", True, "cuda"),
        ("cuda:1", True, "cuda:1"),
    ],
)
def test_pick_device(requested, cuda, expected):
    assert pick_device(requested, cuda_available=cuda) == expected


@pytest.mark.parametrize("requested", ["cuda", "cuda:0"])
def test_a_gpu_that_is_not_there_is_refused(requested):
    with pytest.raises(TifError, match="no CUDA GPU is visible"):
        pick_device(requested, cuda_available=False)


@pytest.mark.parametrize("requested", ["gpu", "cuda:x", "mps0", ""])
def test_an_unknown_device_is_refused(requested):
    with pytest.raises(TifError, match="--device must be"):
        pick_device(requested, cuda_available=True)


def test_on_the_cpu_the_model_is_not_moved():
    class Model:
        def to(self, device):
            raise AssertionError("moved")

    model, tokenizer = Model(), object()
    assert on_device((model, tokenizer), "cpu") == (model, tokenizer)


def test_evaluation_precision_gives_a_device_and_a_dtype_that_agree(monkeypatch):
    monkeypatch.setattr("torch.cuda.is_available", lambda: False)
    monkeypatch.setattr("tif_unlearn.train.precision.cpu_has_fast_bf16", lambda: False)
    assert apply_eval_precision(EvalPrecision()) == ("float32", "cpu")
    with pytest.raises(TifError, match="no CUDA GPU"):
        apply_eval_precision(EvalPrecision(device="cuda"))


# --------------------------------------------------------------- several GPUs, one process


@pytest.mark.parametrize("gpus, processes", [(0, 1), (1, 1), (2, 2), (8, 8), (4, 2)])
def test_one_process_per_gpu_or_fewer_gpus_needs_no_notice(gpus, processes):
    assert one_gpu_notice(gpus, processes) is None


def test_several_gpus_for_one_process_run_on_the_first_with_a_one_line_notice():
    notice = one_gpu_notice(4, 1)
    assert "\n" not in notice and "cuda:0 only" in notice
    assert "torchrun --nproc-per-node 4" in notice and "accelerate launch" in notice


def test_check_hardware_does_not_refuse_several_gpus(monkeypatch, caplog):
    from tif_unlearn.config import UnlearnConfig
    from tif_unlearn.train.runtime import check_hardware

    monkeypatch.setattr("torch.cuda.device_count", lambda: 4)
    with caplog.at_level("WARNING", logger="tif_unlearn"):
        check_hardware(UnlearnConfig(out="out-model", forget="forget.jsonl"))
    assert "cuda:0 only" in caplog.text


def test_the_trainer_keeps_one_process_on_one_gpu(monkeypatch, tmp_path, tiny_model):
    # TrainingArguments counts every visible GPU (n_gpu = 4): the Trainer would wrap the model
    # in DataParallel and draw batches 4 times larger. The trainer keeps to one.
    from tif_unlearn.config import UnlearnConfig
    from tif_unlearn.train.schedule import step_plan, training_arguments
    from tif_unlearn.train.trainer import FinetuneTrainer

    monkeypatch.setattr("torch.cuda.device_count", lambda: 4)
    config = UnlearnConfig(out=str(tmp_path / "out"), forget="forget.jsonl", batch_size=2)
    args = training_arguments(config, step_plan(config, 4), str(tmp_path / "scratch"))
    assert args.n_gpu == 4  # what transformers counts
    FinetuneTrainer(model=tiny_model, args=args, train_dataset=None)
    assert args.n_gpu == 1 and args.train_batch_size == 2
