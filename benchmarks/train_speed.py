"""Training and prediction speed of napari-hcs against bare torch, and prediction memory.

Prints a table with

* training images/s of :func:`napari_hcs.nn.training.train_model` (normalisation,
  class-balanced sampling, augmentation on the device, the loss bookkeeping,
  channels-last memory on CPU and CUDA, mixed precision on CUDA and on CPUs with
  bfloat16 instructions), of the same in float32 (``amp=False``), and of a naive
  bare torch loop over the same network, batch size and data (already
  normalised on the device, no augmentation, default memory format, float32),
  each timed over a warm second epoch, for the default network (``TrainConfig``'s
  depth and width) and the tiny one (depth 1, width 1); repeats are
  interleaved, in rotating order, and medians reported, the ratio as the median
  of the paired ratios, so that other load on a shared machine hits both sides alike;
* the same training loop streaming its batches from a zarr crop store;
* inference cells/s of :func:`napari_hcs.nn.predict.predict_cells`;
* the peak resident memory of a separate process predicting (and embedding)
  1,000,000 cells from a zarr store, with a tiny network and large batches.

Usage::

    python benchmarks/train_speed.py                  # CPU
    python benchmarks/train_speed.py --device cuda    # the same figures on a GPU
"""

from __future__ import annotations

import argparse
import json
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd
import torch
import torch.nn.functional as F
import zarr

from napari_hcs.nn import TrainConfig, build_model, predict_cells, resolve_device, train_model
from napari_hcs.nn.preprocess import Preprocess

CHANNELS = ["DNA", "tubulin", "actin"]


def synthetic_cells(n: int, size: int, seed: int = 0) -> tuple[pd.DataFrame, np.ndarray]:
    """Two classes of uint8 crops (one with a bright centre) in 8 wells."""
    rng = np.random.default_rng(seed)
    labels = np.arange(n) % 2
    crops = rng.integers(20, 60, (n, len(CHANNELS), size, size), dtype=np.uint8)
    quarter = size // 4
    crops[labels == 1, 0, quarter:-quarter, quarter:-quarter] += 80
    table = pd.DataFrame({
        "crop_index": np.arange(n),
        "well": [f"{'AB'[label]}{(i // 2) % 4 + 1:02d}" for i, label in enumerate(labels)],
        "cls": np.array(["a", "b"])[labels],
    })
    return table, crops


def product_images_per_s(table, crops, args, *, amp: bool = True) -> tuple[float, torch.nn.Module, dict]:
    """Images/s of the second (warm) epoch of train_model, and the trained model."""
    config = TrainConfig(model=args.model, depth=args.depth, width=args.width, epochs=2,
                         batch_size=args.batch_size, device=args.device, seed=0, preload=True, amp=amp)
    result = train_model(table, crops, config, label_column="cls", split=pd.Series("train", index=table.index),
                         channels=CHANNELS)
    return result.history[-1]["images_per_s"], result.model, result.meta


def streaming_images_per_s(table, store, args) -> float:
    config = TrainConfig(model=args.model, depth=args.depth, width=args.width, epochs=2,
                         batch_size=args.batch_size, device=args.device, seed=0, preload=False)
    result = train_model(table, store, config, label_column="cls", split=pd.Series("train", index=table.index),
                         channels=CHANNELS)
    return result.history[-1]["images_per_s"]


def bare_images_per_s(table, crops, args) -> float:
    """Images/s of a plain torch loop over the same network, batch size and data."""
    device = resolve_device(args.device)
    torch.manual_seed(0)
    model = build_model(args.model, in_channels=crops.shape[1], num_classes=2, crop_size=crops.shape[-1],
                        depth=args.depth, width=args.width).to(device)
    data = torch.from_numpy(crops).to(device).float()
    data = (data - data.mean(dim=(0, 2, 3), keepdim=True)) / data.std(dim=(0, 2, 3), keepdim=True)
    labels = torch.from_numpy((table.cls == "b").to_numpy().astype(np.int64)).to(device)
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3, weight_decay=5e-4)
    model.train()
    n = len(data) // args.batch_size * args.batch_size
    seconds = 0.0
    for epoch in range(2):  # the first epoch warms up, as for the product
        order = torch.randperm(len(data), device=device)
        started = time.perf_counter()
        for start in range(0, n, args.batch_size):
            index = order[start : start + args.batch_size]
            logits = model(data[index])
            loss = F.cross_entropy(logits.float(), labels[index])
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
        if device.type == "cuda":
            torch.cuda.synchronize()
        seconds = time.perf_counter() - started
    return n / seconds


def write_store(path: Path, cells: int, size: int, chunk: int = 4096) -> None:
    """A uint8 crop store of ``cells`` cells, written chunk by chunk (low memory)."""
    array = zarr.open_array(store=str(path), mode="w", shape=(cells, len(CHANNELS), size, size),
                            chunks=(chunk, len(CHANNELS), size, size), dtype="uint8")
    rng = np.random.default_rng(0)
    for start in range(0, cells, chunk):
        stop = min(start + chunk, cells)
        array[start:stop] = rng.integers(0, 16, (stop - start, len(CHANNELS), size, size), dtype=np.uint8)


def peak_rss_mb() -> float:
    """Peak resident memory of this process in MB.

    On Linux, VmHWM of /proc/self/status: unlike ``ru_maxrss``, it does not carry the
    high-water mark of the parent process that forked this one.
    """
    status = Path("/proc/self/status")
    if status.exists():
        for line in status.read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    scale = 1024**2 if sys.platform == "darwin" else 1024  # bytes on macOS, KiB elsewhere
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / scale


def memory_child(store: str, batch_size: int, device: str) -> None:
    """Predict every cell of ``store`` with a tiny network; print JSON with peak RSS and speed."""
    torch.set_num_threads(2)
    crops = zarr.open_array(store=store, mode="r")
    torch.manual_seed(0)
    model = build_model("cnn1", in_channels=crops.shape[1], num_classes=4, depth=1, width=1, hidden=16)
    meta = {
        "channels": CHANNELS,
        "classes": ["a", "b", "c", "d"],
        "preprocess": Preprocess(crop_size=crops.shape[-1], input_size=16, mean=[8.0] * 3, std=[4.6] * 3).to_meta(),
    }
    before = peak_rss_mb()
    started = time.perf_counter()
    result = predict_cells(model, meta, crops, batch_size=batch_size, device=device, channels=CHANNELS)
    seconds = time.perf_counter() - started
    peak = peak_rss_mb()
    print(json.dumps({
        "cells": int(len(result.crop_index)), "seconds": seconds, "cells_per_s": len(result.crop_index) / seconds,
        "rss_before_mb": before, "peak_rss_mb": peak,
        "result_mb": (result.probabilities.nbytes + result.embeddings.nbytes) / 1024**2,
    }))


def measure_memory(args) -> dict:
    with tempfile.TemporaryDirectory(prefix="napari-hcs-bench-") as folder:
        store = Path(folder) / "crops.zarr"
        started = time.perf_counter()
        write_store(store, args.memory_cells, args.size)
        written = time.perf_counter() - started
        output = subprocess.run(
            [sys.executable, __file__, "--memory-child", str(store), "--memory-batch", str(args.memory_batch),
             "--device", args.device],
            check=True, capture_output=True, text=True,
        ).stdout
        report = json.loads(output.strip().splitlines()[-1])
        report["store_seconds"] = written
        report["store_mb"] = sum(p.stat().st_size for p in store.rglob("*") if p.is_file()) / 1024**2
        return report


def measure_network(args, table, crops, store) -> tuple[list[tuple[str, str]], tuple]:
    """The interleaved repeats of one network: its table rows, and the product's model and meta."""
    rates = {"product": [], "float32": [], "bare": [], "streaming": []}
    runs = {
        "product": lambda: product_images_per_s(table, crops, args),
        "float32": lambda: product_images_per_s(table, crops, args, amp=False)[:1],
        "bare": lambda: (bare_images_per_s(table, crops, args),),
        "streaming": lambda: (streaming_images_per_s(table, store, args),),
    }
    names = list(runs)
    trained = None
    for repeat in range(args.repeats):
        shift = repeat % len(names)
        for name in names[shift:] + names[:shift]:  # rotate the order
            outcome = runs[name]()
            rates[name].append(outcome[0])
            if name == "product":
                trained = outcome[1:]
        print(f"depth {args.depth} width {args.width}, repeat {repeat + 1}: "
              + ", ".join(f"{k} {v[-1]:.0f}" for k, v in rates.items()) + " images/s", file=sys.stderr)
    product, float32, bare, streaming = (rates[name] for name in names)
    tag = f"depth {args.depth} width {args.width}"
    dtype = trained[1]["hyperparameters"]["compute_dtype"]
    rows = [
        (f"{tag}: train, napari-hcs (images/s, median / best; computes in {dtype})",
         f"{statistics.median(product):.0f} / {max(product):.0f}"),
        (f"{tag}: train, napari-hcs in float32 (images/s, median / best)",
         f"{statistics.median(float32):.0f} / {max(float32):.0f}"),
        (f"{tag}: train, naive bare torch loop (images/s, median / best)",
         f"{statistics.median(bare):.0f} / {max(bare):.0f}"),
        (f"{tag}: ratio napari-hcs / bare (median of paired repeats)",
         f"{statistics.median(p / b for p, b in zip(product, bare)):.2f}"),
        (f"{tag}: ratio napari-hcs in float32 / bare (median of paired repeats)",
         f"{statistics.median(p / b for p, b in zip(float32, bare)):.2f}"),
        (f"{tag}: train streaming from zarr (images/s, median / best)",
         f"{statistics.median(streaming):.0f} / {max(streaming):.0f}"),
        (f"{tag}: ratio streaming / bare (median of paired repeats)",
         f"{statistics.median(s / b for s, b in zip(streaming, bare)):.2f}"),
    ]
    return rows, trained


def main(argv=None) -> int:
    defaults = TrainConfig()
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cpu", help="cpu, cuda, mps or auto (default cpu)")
    parser.add_argument("--model", default="wrn")
    parser.add_argument("--networks", default=f"{defaults.depth}x{defaults.width},1x1",
                        help="DEPTHxWIDTH of each network measured (default: the default network and the tiny one)")
    parser.add_argument("--cells", type=int, default=1024, help="training cells (default 1024)")
    parser.add_argument("--size", type=int, default=32, help="crop side (default 32)")
    parser.add_argument("--batch-size", type=int, default=128)
    parser.add_argument("--repeats", type=int, default=5, help="interleaved repeats (default 5)")
    parser.add_argument("--threads", type=int, default=2, help="torch CPU threads (default 2)")
    parser.add_argument("--memory-cells", type=int, default=1_000_000, help="cells predicted for the memory figure")
    parser.add_argument("--memory-batch", type=int, default=4096)
    parser.add_argument("--skip-memory", action="store_true")
    parser.add_argument("--memory-child", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.memory_child:
        memory_child(args.memory_child, args.memory_batch, args.device)
        return 0
    torch.set_num_threads(args.threads)
    device = resolve_device(args.device)
    table, crops = synthetic_cells(args.cells, args.size)
    rows = [
        ("device", f"{device.type} ({torch.get_num_threads()} threads)" if device.type == "cpu"
         else f"{device} ({torch.cuda.get_device_name(device)})" if device.type == "cuda" else str(device)),
        ("data", f"{args.model}, {args.cells} cells 3x{args.size}x{args.size}, batch {args.batch_size}"),
    ]
    with tempfile.TemporaryDirectory(prefix="napari-hcs-bench-") as folder:
        store = zarr.open_array(store=str(Path(folder) / "crops.zarr"), mode="w", shape=crops.shape,
                                chunks=(256, *crops.shape[1:]), dtype=crops.dtype)
        store[:] = crops
        for network in args.networks.split(","):
            args.depth, args.width = (int(v) for v in network.lower().split("x"))
            network_rows, (model, meta) = measure_network(args, table, crops, store)
            rows += network_rows
        started = time.perf_counter()
        predict_cells(model, meta, crops, batch_size=512, device=args.device, channels=CHANNELS)
        rows.append((f"predict, in memory, depth {args.depth} width {args.width} (cells/s)",
                     f"{len(crops) / (time.perf_counter() - started):.0f}"))
    if not args.skip_memory:
        memory = measure_memory(args)
        rows += [
            (f"predict {memory['cells']:,} cells from zarr (cells/s)", f"{memory['cells_per_s']:.0f}"),
            ("  peak RSS of that process (MB)", f"{memory['peak_rss_mb']:.0f}"),
            ("  results (MB) / peak RSS before predicting (MB)",
             f"{memory['result_mb']:.0f} / {memory['rss_before_mb']:.0f}"),
            ("  store on disk (MB)", f"{memory['store_mb']:.0f}"),
        ]
    width = max(len(name) for name, _ in rows)
    print(f"| {'measure'.ljust(width)} | value |")
    print(f"|{'-' * (width + 2)}|-------|")
    for name, value in rows:
        print(f"| {name.ljust(width)} | {value} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
