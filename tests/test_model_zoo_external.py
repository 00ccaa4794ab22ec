"""Models of other libraries by name: torchvision:<name>, timm:<name>, hf:<directory> (docs/models.md).

Real libraries, not mocks (the `vision` extra installs torchvision and timm; transformers comes with
`text`). Inputs are tiny (16x16 and 32x32) so that every test takes well under a second or two.
"""

from __future__ import annotations

import pytest
import torch
from safetensors.torch import save_file

from distill.config.schema import ModelConfig
from distill.data.bundle import Split, from_tensors
from distill.errors import CheckpointError, CompatibilityError, ConfigError
from distill.knowledge.taps import Taps
from distill.models import MODELS, build_model
from distill.models.registry import check_model_options, rebuild_options
from distill.pipeline.building import build_from_spec

torchvision = pytest.importorskip("torchvision")
timm = pytest.importorskip("timm")


def tiny_images(channels: int, size: int = 16, n: int = 24, classes: int = 4):
    g = torch.Generator().manual_seed(0)
    x = torch.randn(n, channels, size, size, generator=g)
    y = torch.arange(n) % classes
    return from_tensors("tiny", Split(x[:16], y[:16]), Split(x[16:], y[16:]), num_classes=classes, val_size=4)


def one_line(exc: pytest.ExceptionInfo) -> str:
    message = str(exc.value)
    assert "\n" not in message and "Traceback" not in message
    return message


@pytest.mark.parametrize("channels", [1, 3])
def test_torchvision_model_from_the_config_takes_the_datas_classes_and_channels(channels):
    data = tiny_images(channels)
    model = build_from_spec(ModelConfig.model_validate({"name": "torchvision:resnet18"}), data, seed=0)
    assert isinstance(model, torchvision.models.ResNet)
    assert model.conv1.in_channels == channels and model.fc.out_features == 4
    assert model(data.val.inputs).shape == (4, 4)


@pytest.mark.parametrize("channels", [1, 3])
def test_timm_model_from_the_config_takes_the_datas_classes_and_channels(channels):
    data = tiny_images(channels)
    spec = ModelConfig.model_validate({"name": "timm:test_resnet", "drop_rate": 0.1})
    model = build_from_spec(spec, data, seed=0)
    assert model.conv1[0].in_channels == channels and model.num_classes == 4 and model.drop_rate == 0.1
    assert model(data.val.inputs).shape == (4, 4)


def test_timm_vision_transformer_is_sized_for_the_datas_images():
    model = build_model("timm:test_vit", (3, 32, 32), 5)
    assert model(torch.randn(2, 3, 32, 32)).shape == (2, 5)


def imagenet_like(path, name="resnet18", fmt="safetensors", wrap=None):
    """A 1000-class RGB checkpoint of a torchvision model, saved the way training scripts save them."""
    torch.manual_seed(7)
    state = torchvision.models.get_model(name, weights=None).state_dict()
    if fmt == "safetensors":
        save_file({k: v.contiguous() for k, v in state.items()}, str(path))
    else:
        torch.save({wrap: state} if wrap else state, path)
    return state


def test_a_checkpoint_with_another_head_loads_with_a_new_head(tmp_path, capsys):
    saved = imagenet_like(tmp_path / "r18.safetensors")
    torch.manual_seed(0)
    fresh_fc = torchvision.models.resnet18(num_classes=4).fc.weight  # the head a fresh model starts with
    torch.manual_seed(0)
    model = build_model("torchvision:resnet18", (3, 16, 16), 4, weights=str(tmp_path / "r18.safetensors"))
    state = model.state_dict()
    assert all(torch.equal(state[k], v) for k, v in saved.items() if not k.startswith("fc."))
    assert model.fc.weight.shape == (4, 512) and torch.equal(model.fc.weight, fresh_fc)
    out = capsys.readouterr().out
    assert out.count("\n") == 1 and "head" in out and "1000 outputs" in out and "4 classes" in out


def test_an_rgb_checkpoint_on_one_channel_data_sums_its_first_filters(tmp_path, capsys):
    saved = imagenet_like(tmp_path / "r18.safetensors")
    model = build_model("torchvision:resnet18", (1, 16, 16), 4, weights=str(tmp_path / "r18.safetensors"))
    # timm's adapt_input_conv: a grey image x gives what the RGB filters give on the image (x, x, x)
    expected = saved["conv1.weight"][:, 0:1] + saved["conv1.weight"][:, 1:2] + saved["conv1.weight"][:, 2:3]
    torch.testing.assert_close(model.conv1.weight, expected)
    x = torch.randn(2, 1, 16, 16)
    rgb = torch.nn.functional.conv2d(x.repeat(1, 3, 1, 1), saved["conv1.weight"], stride=2, padding=3)
    torch.testing.assert_close(model.conv1(x), rgb, atol=1e-5, rtol=1e-4)
    assert "channels" in capsys.readouterr().out


@pytest.mark.parametrize("wrap", [None, "state_dict", "model"])
def test_pt_weights_are_read_with_weights_only(tmp_path, wrap):
    saved = imagenet_like(tmp_path / "r18.pth", fmt="pt", wrap=wrap)
    model = build_model("torchvision:resnet18", (3, 16, 16), 1000, weights=str(tmp_path / "r18.pth"))
    assert all(torch.equal(model.state_dict()[k], v) for k, v in saved.items())


def test_a_pickled_model_object_is_refused(tmp_path):
    torch.save(torchvision.models.resnet18(), tmp_path / "whole.pt")  # unpickling it would run code
    with pytest.raises(CheckpointError) as exc:
        build_model("torchvision:resnet18", (3, 16, 16), 4, weights=str(tmp_path / "whole.pt"))
    assert "weights_only=True" in one_line(exc) and "state_dict()" in str(exc.value)


def test_bad_weights_files_are_one_line_errors(tmp_path):
    (tmp_path / "junk.safetensors").write_bytes(b"not a safetensors file at all")
    (tmp_path / "w.txt").write_text("weights")
    cases = {"junk.safetensors": "not a readable safetensors", "w.txt": "expected .safetensors",
             "missing.pth": "not found"}
    for name, expected in cases.items():
        with pytest.raises(CheckpointError) as exc:
            build_model("torchvision:resnet18", (3, 16, 16), 4, weights=str(tmp_path / name))
        assert expected in one_line(exc) and name in str(exc.value)


def test_weights_of_another_architecture_name_the_keys_that_differ(tmp_path):
    imagenet_like(tmp_path / "r34.safetensors", "resnet34")
    with pytest.raises(CheckpointError) as exc:
        build_model("torchvision:resnet18", (3, 16, 16), 4, weights=str(tmp_path / "r34.safetensors"))
    assert "unexpected layer1.2." in one_line(exc) and "r34.safetensors" in str(exc.value)


def test_unknown_names_list_close_matches_and_how_to_list_them():
    for name, close, listing in [("torchvision:resnet19", "resnet18", "distill models torchvision"),
                                 ("timm:convnext_nanoo", "convnext_nano", "distill models 'timm:"),
                                 ("torchvison:resnet18", "torchvision:<name>", "distill models")]:
        with pytest.raises(KeyError) as exc:
            MODELS.get(name)
        assert close in one_line(exc) and listing in str(exc.value)
    assert "torchvision:resnet18" in MODELS and "torchvision:resnet19" not in MODELS


def test_library_options_are_checked_before_anything_is_built():
    assert check_model_options("torchvision:resnet18", {"zero_init_residual": True}) == {"zero_init_residual": True}
    with pytest.raises(ConfigError) as exc:
        check_model_options("torchvision:resnet18", {"zero_init_residul": True}, "student.model")
    assert "(did you mean 'zero_init_residual'?)" in one_line(exc) and "student.model" in str(exc.value)
    with pytest.raises(ConfigError) as exc:
        check_model_options("timm:test_resnet", {"pretrained": True}, "teacher.model")
    assert "never" in one_line(exc) and "weights:" in str(exc.value)
    with pytest.raises(CheckpointError) as exc:
        check_model_options("torchvision:resnet18", {"weights": "nowhere.pth"}, "config: student.model")
    assert "config: student.model: weights file not found: nowhere.pth" in one_line(exc)
    with pytest.raises(CompatibilityError, match="takes images"):
        build_model("torchvision:resnet18", (20,), 4)


def test_rebuilding_from_a_distill_checkpoint_does_not_read_the_weights_file_again():
    assert rebuild_options("torchvision:resnet18", {"weights": "gone.pth", "groups": 1}) == {"groups": 1}
    assert rebuild_options("cnn", {"weights": 1}) == {"weights": 1}  # a zoo model's option of that name stays


def test_hooks_reach_torchvision_layers_by_module_path():
    model = build_model("torchvision:resnet18", (1, 32, 32), 4).eval()
    taps = Taps(model, ["layer3", "layer4.1.conv2"], "teacher")
    with torch.no_grad():
        model(torch.randn(2, 1, 32, 32))
    out = taps.pop()
    assert out["layer3"].shape == (2, 256, 2, 2) and out["layer4.1.conv2"].shape == (2, 512, 1, 1)
    with pytest.raises(CompatibilityError, match="did you mean 'layer3'"):
        Taps(model, ["layer33"], "teacher")


@pytest.mark.parametrize("method,options", [
    ("fitnets", {"student_layer": "features.6", "teacher_layer": "layer3"}),
    ("at", {"student_layer": "features.3", "teacher_layer": "layer2"}),
])
def test_feature_methods_train_a_torchvision_student_from_a_torchvision_teacher(method, options):
    import distill

    data = tiny_images(1, size=32)
    torch.manual_seed(0)
    teacher = build_model("torchvision:resnet18", (1, 32, 32), 4)
    student = build_model("torchvision:mobilenet_v3_small", (1, 32, 32), 4)
    before = {k: v.clone() for k, v in student.state_dict().items()}
    result = distill.distill_model(teacher, student, data, method=method, device="cpu",
                                   train={"epochs": 1, "batch_size": 8}, **options)
    terms = result.history[-1]["terms"]
    feature_term = {"fitnets": "hint", "at": "attention"}[method]
    assert feature_term in terms and all(torch.isfinite(torch.tensor(v)) for v in terms.values())
    assert any(not torch.equal(before[k], v) for k, v in student.state_dict().items())


def hf_image_dir(tmp_path, kind: str, pretrained_classes: int | None = None):
    import transformers

    if kind == "vit":
        config = transformers.ViTConfig(image_size=16, patch_size=4, hidden_size=16, num_hidden_layers=2,
                                        num_attention_heads=2, intermediate_size=32,
                                        architectures=["ViTForImageClassification"])
    else:
        config = transformers.ResNetConfig(embedding_size=8, hidden_sizes=[8, 16], depths=[1, 1],
                                           layer_type="basic")  # no architectures: told by its model type
    directory = tmp_path / kind
    if pretrained_classes is None:
        config.save_pretrained(directory)  # a config alone: the model starts from it
    else:
        config.num_labels = pretrained_classes
        torch.manual_seed(3)
        transformers.AutoModelForImageClassification.from_config(config).save_pretrained(directory)
    return directory


@pytest.mark.parametrize("kind,channels", [("vit", 3), ("resnet", 1)])
def test_hf_image_classifier_from_a_local_config(tmp_path, kind, channels):
    directory = hf_image_dir(tmp_path, kind)
    data = tiny_images(channels)
    model = build_from_spec(ModelConfig.model_validate({"name": f"hf:{directory}"}), data, seed=0)
    assert model.task == "image" and model.model.config.num_channels == channels
    assert model(data.val.inputs).shape == (4, 4)
    with pytest.raises(ConfigError) as exc:
        check_model_options(f"hf:{directory}", {"hidden_sizez": [4]}, "student.model")
    assert "no field 'hidden_sizez'" in one_line(exc)


def test_hf_pretrained_directory_keeps_its_weights_and_replaces_its_head(tmp_path, capsys):
    import transformers

    directory = hf_image_dir(tmp_path, "vit", pretrained_classes=3)
    saved = transformers.AutoModelForImageClassification.from_pretrained(directory).state_dict()
    model = build_model(f"hf:{directory}", (3, 16, 16), 5)
    state = model.model.state_dict()
    assert all(torch.equal(state[k], v) for k, v in saved.items() if not k.startswith("classifier."))
    assert model.model.classifier.out_features == 5 and "3 classes" in capsys.readouterr().out
    taps = Taps(model, ["model.vit.layers.1"], "teacher")
    model(torch.randn(2, 3, 16, 16))
    assert taps.pop()["model.vit.layers.1"].shape == (2, 17, 16)  # 16 patches + [CLS], width 16


def test_hf_needs_a_local_directory(tmp_path):
    with pytest.raises(ConfigError) as exc:
        MODELS.get(f"hf:{tmp_path / 'nowhere'}")
    assert "no config.json" in one_line(exc) and "nothing is downloaded" in str(exc.value)


@pytest.mark.parametrize("name", [pytest.param("torchvision:mobilenet_v3_small", marks=pytest.mark.slow),
                                  "timm:test_resnet"])
def test_a_library_student_exports_to_onnx_and_int8(name, tmp_path):
    pytest.importorskip("onnxruntime")
    from distill.export.pipeline import export_model

    data = tiny_images(1, size=32, n=40)
    model = build_model(name, (1, 32, 32), 4).eval()
    report = export_model(model, data, tmp_path, repeats=1, calibration=1, calibration_batch_size=8, batch_size=4)
    assert report["max_abs_diff"] <= report["tolerance"]
    assert (tmp_path / "student.onnx").is_file() and (tmp_path / "student.int8.onnx").is_file()
    assert report["int8"]["accuracy"] is not None


def test_hf_text_classifier_takes_token_ids_and_lends_its_tokenizer(tmp_path):
    import transformers

    from distill.config.schema import tokenizer_home

    config = transformers.BertConfig(vocab_size=50, hidden_size=16, num_hidden_layers=1, num_attention_heads=2,
                                     intermediate_size=32, max_position_embeddings=32, pad_token_id=0)
    config.save_pretrained(tmp_path / "bert")
    model = build_model(f"hf:{tmp_path / 'bert'}", (12,), 3).eval()
    ids = torch.randint(1, 50, (2, 12))
    padded = torch.cat([ids, torch.zeros(2, 4, dtype=torch.long)], 1)  # padding is masked out
    with torch.no_grad():
        assert model.task == "text" and model(ids).shape == (2, 3)
        torch.testing.assert_close(model(padded), model(ids), atol=1e-5, rtol=1e-4)
    assert tokenizer_home(f"hf:{tmp_path / 'bert'}", {}) == str(tmp_path / "bert")
    assert tokenizer_home("hf_classifier", {"path": "/m"}) == "/m" and tokenizer_home("cnn", {}) is None


def test_teacher_checkpoint_takes_a_pth_state_dict_strictly(tmp_path):
    from distill.checkpoint import load_weights_into

    trained = build_model("torchvision:resnet18", (3, 16, 16), 4)
    torch.save(trained.state_dict(), tmp_path / "teacher.pth")
    teacher = build_model("torchvision:resnet18", (3, 16, 16), 4)
    load_weights_into(teacher, tmp_path / "teacher.pth", "the teacher")
    assert all(torch.equal(teacher.state_dict()[k], v) for k, v in trained.state_dict().items())
    imagenet_like(tmp_path / "imagenet.pth", fmt="pt")  # a frozen teacher's head must already fit
    with pytest.raises(CheckpointError) as exc:
        load_weights_into(teacher, tmp_path / "imagenet.pth", "the teacher")
    assert "fc.weight is [1000, 512] in the checkpoint" in one_line(exc)
