"""Distributed training: two CPU processes with the Gloo backend, as torchrun would start them."""

from __future__ import annotations

import hashlib
import json
import os
import socket

import pytest
import torch
import torch.multiprocessing as mp

from napari_hcs.nn.checkpoint import load_checkpoint


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _digest(model: torch.nn.Module) -> str:
    digest = hashlib.sha256()
    for name, tensor in sorted(model.state_dict().items()):
        digest.update(name.encode() + tensor.detach().cpu().contiguous().numpy().tobytes())
    return digest.hexdigest()


def _worker(rank: int, world_size: int, port: int, folder: str) -> None:
    from napari_hcs.nn.training import train_model
    from training_cells import CHANNELS, make_crops, small

    torch.set_num_threads(1)
    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port), RANK=str(rank),
                      WORLD_SIZE=str(world_size), LOCAL_RANK=str(rank))
    table, crops = make_crops(64)
    result = train_model(table, crops, small(epochs=2, batch_size=8), label_column="cls", channels=CHANNELS,
                         checkpoint_path=os.path.join(folder, "model.pt"))
    report = {
        "rank": rank,
        "epochs": len(result.history),
        "checkpoint": None if result.checkpoint is None else str(result.checkpoint),
        "weights": _digest(result.model),
        "metrics": sorted(result.metrics),
        "world_size": result.meta["hyperparameters"]["world_size"],
        "group_closed": not torch.distributed.is_initialized(),
    }
    with open(os.path.join(folder, f"rank{rank}.json"), "w") as handle:
        json.dump(report, handle)


@pytest.mark.slow
@pytest.mark.skipif(not torch.distributed.is_available(), reason="torch built without distributed support")
def test_two_process_gloo_training_writes_the_model_once(tmp_path):
    mp.spawn(_worker, args=(2, _free_port(), str(tmp_path)), nprocs=2, join=True)
    reports = [json.loads((tmp_path / f"rank{r}.json").read_text()) for r in (0, 1)]
    assert [r["epochs"] for r in reports] == [2, 2]
    assert reports[0]["checkpoint"] == str(tmp_path / "model.pt") and reports[1]["checkpoint"] is None
    assert sorted(p.name for p in tmp_path.iterdir()) == ["model.pt", "rank0.json", "rank1.json"]
    assert reports[0]["weights"] == reports[1]["weights"]  # the replicas stayed in step
    assert reports[0]["metrics"] == ["val"] and reports[1]["metrics"] == []
    assert all(r["world_size"] == 2 and r["group_closed"] for r in reports)
    model, meta = load_checkpoint(tmp_path / "model.pt")
    assert _digest(model) == reports[0]["weights"]
    assert meta["hyperparameters"]["world_size"] == 2
