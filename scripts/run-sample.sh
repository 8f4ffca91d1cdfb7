#!/usr/bin/env bash
# Set everything up and run the main job on the bundled two-well scPortrait plate
# (idempotent: results go to ./sample-run, which is rebuilt each time).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
export PATH="$PWD/.venv/bin:$PATH"
out="sample-run"
rm -rf "$out"
mkdir -p "$out"
plate=$(python -c "from napari_hcs.samples.bundled import sample_path; print(sample_path('scportrait_mini'))")
layout="$plate/plate_layout.tsv"

echo "== 1. The plate"
napari-hcs info "$plate" --layout "$layout"

echo "== 2. Write it as an OME-Zarr HCS plate"
napari-hcs convert "$plate" "$out/plate.zarr" --layout "$layout"

echo "== 3. Quality control of every site (focus, saturation, ...) on the raw pixels"
napari-hcs qc "$out/plate.zarr" --project "$out/project" --json > "$out/qc.json"
python -c "import json, sys; d = json.load(open(sys.argv[1])); print(f\"{d['sites']} sites checked, {len(d['flagged'])} flagged\")" "$out/qc.json"

echo "== 4. Segment nuclei and cells, cut 64x64 crops (the cells are 50-60 pixels across), measure features"
napari-hcs segment "$out/plate.zarr" --project "$out/project" \
  --nuclei-channel DAPI --cell-channel mCherry --crop-size 64 --workers 2

echo "== 5. Train a wide ResNet on two wells (timepoint 3 held out as test)"
python - "$out/project" <<'PY'
import sys
from napari_hcs.project import CellStore, Project

project = Project(sys.argv[1])
cells = CellStore(project.folder).cells()
split = cells[["crop_index"]].copy()
split["split"] = ["test" if t == 3 else "train" for t in cells["timepoint"]]
CellStore(project.folder).write_columns("split", split)
print(split["split"].value_counts().to_string())
PY
napari-hcs train --project "$out/project" --label-column Treatment --split-column split \
  --input-size 32 --out "$out/project/models/wrn.pt"

echo "== 6. Predict every cell: class, confidence, embedding"
napari-hcs predict --project "$out/project" --model "$out/project/models/wrn.pt"

echo "== 7. The CNN beside the classical baselines on the same split"
napari-hcs baseline --project "$out/project" --label-column Treatment --split-column split
echo "== 8. Embeddings: the CNN's penultimate layer, its UMAP, k-means with k=2 scored against the treatment"
napari-hcs embed --project "$out/project" --source cnn --model "$out/project/models/wrn.pt" --reduction umap
napari-hcs cluster --project "$out/project" --embedding cnn --method kmeans --k 2 --labels-column Treatment

echo "== 9. Export every cell for scanpy, pandas or R (AnnData: X features, obsm X_cnn and X_umap)"
napari-hcs export --project "$out/project" --format h5ad "$out/cells.h5ad"

echo "== 10. A picture of the result"
napari-hcs figure --project "$out/project" --model wrn --site B04/0/3 --out "$out/predictions.png"
echo "Open it in napari: .venv/bin/napari-hcs view $out/plate.zarr --project $out/project --model wrn"
echo "Done: results in $out/"
