"""Run under torchrun by test_multiprocess.py: cache the reference sharded, then `tif unlearn`.

Usage: distributed_worker.py MODEL_DIR FORGET CACHE_JSON -- <tif unlearn arguments>
Rank 0 writes the gathered reference cache to CACHE_JSON; every rank then runs the CLI.
"""

from __future__ import annotations

import json
import sys

from tif_unlearn.cli.app import main
from tif_unlearn.data.loaders import load_records
from tif_unlearn.methods.base import TOKEN_LOGITS
from tif_unlearn.models import load_model
from tif_unlearn.train.distributed import is_main_process, shard_and_gather
from tif_unlearn.train.streams import cache_reference, encode_all


def gathered_cache(model_dir: str, forget: str) -> list[dict]:
    model, tokenizer = load_model(model_dir, dtype="float64")
    examples = encode_all(tokenizer, load_records(forget), 512)
    return shard_and_gather(
        examples,
        lambda shard: cache_reference(
            model, shard, TOKEN_LOGITS, pad_token_id=tokenizer.pad_token_id, batch_size=3
        ),
    )


if __name__ == "__main__":
    model_dir, forget, cache_json, separator, *cli_args = sys.argv[1:]
    assert separator == "--"
    cache = gathered_cache(model_dir, forget)
    if is_main_process():
        with open(cache_json, "w") as handle:
            json.dump(cache, handle)
    sys.exit(main(cli_args))
