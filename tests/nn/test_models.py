"""Networks: registry, shapes at any crop size and channel count, embeddings."""

from __future__ import annotations

import pytest
import torch

from napari_hcs.nn.models import MODELS, WideResNet, build_model, hyperparameter_names, model_names, model_task
from napari_hcs.nn.models.wide_resnet import PreActBlock
from napari_hcs.vocabulary import MODEL_NAMES

torch.set_num_threads(1)


@pytest.mark.parametrize("name", ["wrn", "cnn1", "cnn2", "cnn3"])
@pytest.mark.parametrize("channels, size", [(1, 20), (4, 32), (3, 33)])
def test_classifiers_give_logits_and_embeddings_at_any_size(name, channels, size):
    model = build_model(name, in_channels=channels, num_classes=5, depth=1, width=1).eval()
    x = torch.randn(2, channels, size, size)
    logits, embedding = model(x, return_embedding=True)
    assert logits.shape == (2, 5)
    assert embedding.shape == (2, model.embedding_dim)
    assert torch.allclose(model.embed(x), embedding)
    assert torch.allclose(model(x), logits)
    assert model_task(name) == "classification"


@pytest.mark.parametrize("depth, width", [(2, 1), (2, 2), (4, 2)])
def test_wide_resnet_stages(depth, width):
    model = WideResNet(4, 8, depth=depth, width=width)
    blocks = [b for b in model.modules() if isinstance(b, PreActBlock)]
    assert len(blocks) == 3 * depth
    assert [b.conv1.out_channels for b in blocks[::depth]] == [16 * width, 32 * width, 64 * width]
    assert [b.conv1.stride[0] for b in blocks[::depth]] == [1, 2, 2]
    assert model.embedding_dim == 64 * width
    features = model.stages(model.stem(torch.zeros(1, 4, 32, 32)))
    assert features.shape == (1, 64 * width, 8, 8)


def test_pre_activation_block_normalises_before_convolving():
    block = PreActBlock(8, 8)
    names = [name for name, _ in block.named_children()]
    assert names[:2] == ["bn1", "conv1"]
    x = torch.randn(2, 8, 6, 6)
    block.eval()
    with torch.no_grad():  # identity shortcut: output = x + residual
        residual = block.conv2(block.dropout(torch.relu(block.bn2(block.conv1(torch.relu(block.bn1(x)))))))
        assert torch.allclose(block(x), x + residual)


def test_cnn_variants_differ_as_the_study():
    kinds = {name: {type(m).__name__ for m in build_model(name, in_channels=3, num_classes=2).modules()}
             for name in ("cnn1", "cnn2", "cnn3")}
    assert "MaxPool2d" in kinds["cnn1"] and "BatchNorm2d" not in kinds["cnn1"]
    assert {"MaxPool2d", "BatchNorm2d"} <= kinds["cnn2"]
    assert "BatchNorm2d" in kinds["cnn3"] and "MaxPool2d" not in kinds["cnn3"]
    strides = [m.stride[0] for m in build_model("cnn3", in_channels=3, num_classes=2).modules()
               if isinstance(m, torch.nn.Conv2d)]
    assert strides.count(2) == 2


def test_dropout_is_optional():
    with_dropout = build_model("wrn", in_channels=3, num_classes=2, dropout=0.3)
    assert any(isinstance(m, torch.nn.Dropout) for m in with_dropout.modules())
    assert not any(isinstance(m, torch.nn.Dropout) for m in build_model("wrn", in_channels=3, num_classes=2).modules())


@pytest.mark.parametrize("size", [16, 32, 33, 68])
def test_autoencoder_reconstructs_and_embeds(size):
    model = build_model("ae", in_channels=3, crop_size=size, embedding_dim=12).eval()
    x = torch.randn(2, 3, size, size)
    reconstruction, embedding = model(x, return_embedding=True)
    assert reconstruction.shape == x.shape
    assert embedding.shape == (2, 12) and torch.allclose(model.embed(x), embedding)
    assert model_task("ae") == "embedding"


def test_registry_names_and_errors():
    assert model_names() == ["wrn", "cnn1", "cnn2", "cnn3", "ae"]
    with pytest.raises(ValueError, match="Unknown model 'resnet50'; models are: wrn, cnn1"):
        build_model("resnet50", in_channels=3, num_classes=2)
    with pytest.raises(ValueError, match="does not take kernel"):
        build_model("wrn", in_channels=3, num_classes=2, kernel=5)
    with pytest.raises(ValueError, match="needs num_classes"):
        build_model("wrn", in_channels=3)
    config = build_model("cnn2", in_channels=3, num_classes=2, width=1).config
    assert config == {"name": "cnn2", "depth": 2, "width": 1, "hidden": 256, "dropout": 0.5,
                      "crop_size": None, "in_channels": 3, "num_classes": 2}


def test_registry_is_the_vocabulary():
    assert tuple(MODELS) == MODEL_NAMES
    assert "hidden" in hyperparameter_names("cnn1") and "hidden" not in hyperparameter_names("wrn")
