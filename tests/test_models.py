"""freqkit.models: the Normalize layer, SmallCNN, ResNetCIFAR, PlantedCNN, build_model,
prediction and evaluation, devices, and pretrained ImageNet classifiers."""
import importlib.util
import sys
from collections import OrderedDict
from pathlib import Path

import pytest
import torch
from torch import nn

from freqkit import models as M


def test_normalize_matches_formula_and_is_saved():
    norm = M.Normalize([0.1, 0.2, 0.3], [0.5, 0.25, 2.0])
    x = torch.rand(4, 3, 5, 6)
    expected = (x - torch.tensor([0.1, 0.2, 0.3]).view(1, 3, 1, 1)) / torch.tensor([0.5, 0.25, 2.0]).view(1, 3, 1, 1)
    assert torch.allclose(norm(x), expected)
    assert set(norm.state_dict()) == {"mean", "std"}
    assert "mean=[0.1, 0.2, 0.3]" in repr(norm)
    # Differentiable with respect to the input (attributions need it).
    x.requires_grad_(True)
    norm(x).sum().backward()
    assert torch.allclose(x.grad[0, 1], torch.full((5, 6), 4.0))


def test_normalize_scalar_broadcasts():
    norm = M.Normalize(0.5, 0.5)
    assert torch.allclose(norm(torch.ones(1, 3, 2, 2)), torch.ones(1, 3, 2, 2))


@pytest.mark.parametrize("mean, std, match", [
    ([0.5, 0.5], [0.1, 0.2, 0.3], "same length"),
    ([0.5], [0.0], "std must be > 0"),
    ([float("nan")], [1.0], "finite"),
    ([], [], "non-empty"),
])
def test_normalize_bad_arguments(mean, std, match):
    with pytest.raises(ValueError, match=match):
        M.Normalize(mean, std)


def test_normalize_rejects_wrong_channels():
    with pytest.raises(ValueError, match=r"expects input \(N, 3, H, W\)"):
        M.Normalize(M.CIFAR10_MEAN, M.CIFAR10_STD)(torch.rand(2, 1, 8, 8))


def _first_layer(model):
    return next(iter(model.children()))


def test_small_cnn_shapes_and_normalize_first():
    torch.manual_seed(0)
    model = M.SmallCNN().eval()
    x = torch.rand(5, 1, 28, 28)
    assert model(x).shape == (5, 10)
    assert isinstance(_first_layer(model), M.Normalize)
    assert torch.allclose(model.normalize.mean.flatten(), torch.tensor(M.MNIST_MEAN))
    other = M.SmallCNN(in_channels=3, n_classes=4, width=8, image_size=32, mean=M.CIFAR10_MEAN, std=M.CIFAR10_STD)
    assert other(torch.rand(2, 3, 32, 32)).shape == (2, 4)
    with pytest.raises(ValueError, match="divisible by 4"):
        M.SmallCNN(image_size=30)
    with pytest.raises(ValueError, match="width"):
        M.SmallCNN(width=0)


def test_resnet_shapes_width_and_gradients():
    torch.manual_seed(0)
    model = M.ResNetCIFAR(width=8)
    assert isinstance(_first_layer(model), M.Normalize)
    x = torch.rand(3, 3, 32, 32, requires_grad=True)
    out = model(x)
    assert out.shape == (3, 10)
    out[:, 0].sum().backward()
    assert x.grad is not None and float(x.grad.abs().sum()) > 0
    n8 = sum(p.numel() for p in model.parameters())
    n16 = sum(p.numel() for p in M.ResNetCIFAR(width=16).parameters())
    assert 3.5 < n16 / n8 < 4.1  # convs dominate: parameters grow with width^2
    # Works on other sizes (global pooling) and in channels_last.
    cl = model.eval().to(memory_format=torch.channels_last)
    assert cl(torch.rand(2, 3, 48, 40).contiguous(memory_format=torch.channels_last)).shape == (2, 10)


def test_models_are_deterministic_given_seed():
    torch.manual_seed(1)
    a = M.ResNetCIFAR(width=4)
    torch.manual_seed(1)
    b = M.ResNetCIFAR(width=4)
    for (ka, va), (kb, vb) in zip(a.state_dict().items(), b.state_dict().items()):
        assert ka == kb and torch.equal(va, vb)


def test_build_model_defaults_and_kwargs():
    m = M.build_model("mnist")
    assert isinstance(m, M.SmallCNN) and m(torch.rand(1, 1, 28, 28)).shape == (1, 10)
    c = M.build_model("cifar10", width=4)
    assert isinstance(c, M.ResNetCIFAR) and c.fc.in_features == 32
    assert torch.allclose(c.normalize.std.flatten(), torch.tensor(M.CIFAR10_STD))
    s = M.build_model("cifar10", arch="smallcnn", width=4)
    assert isinstance(s, M.SmallCNN) and s(torch.rand(2, 3, 32, 32)).shape == (2, 10)
    r = M.build_model("mnist", arch="resnet", width=4)
    assert r(torch.rand(2, 1, 28, 28)).shape == (2, 10)


@pytest.mark.parametrize("args, match", [
    (("imagenet",), "dataset must be one of"),
    (("cifar10", "vgg"), "arch must be one of"),
])
def test_build_model_bad_input(args, match):
    with pytest.raises(ValueError, match=match):
        M.build_model(*args)


def test_with_normalization_wraps_any_model():
    lin = nn.Sequential(nn.Flatten(), nn.Linear(4, 2))
    wrapped = M.with_normalization(lin, [0.5], [0.5])
    x = torch.rand(3, 1, 2, 2)
    assert torch.allclose(wrapped(x), lin((x - 0.5) / 0.5))
    assert list(dict(wrapped.named_children())) == ["normalize", "net"]


def test_planted_cnn_shapes_and_errors():
    m = M.PlantedCNN(3, 4, width=5, mean=[0.5] * 3, std=[0.1] * 3)
    assert m(torch.rand(2, 3, 16, 12)).shape == (2, 4)
    with pytest.raises(ValueError, match="n_classes"):
        M.PlantedCNN(1, 1)


def _natural_images(n=64, seed=0):
    """Correlated images (smooth random fields): neighbouring pixels and channels are correlated."""
    g = torch.Generator().manual_seed(seed)
    x = torch.rand(n, 3, 8, 8, generator=g)
    x = nn.functional.interpolate(x, size=32, mode="bilinear", align_corners=False)
    x = 0.7 * x + 0.3 * x.mean(1, keepdim=True) + 0.05 * torch.rand(n, 3, 32, 32, generator=g)
    return x.clamp(0, 1)


def test_patch_whitening_whitens_the_patches_it_was_fitted_to():
    x = M.Normalize(M.CIFAR10_MEAN, M.CIFAR10_STD)(_natural_images())
    layer = M.PatchWhitening(3, 2, eps=1e-6)
    p = layer.patches(x).double()
    # The patches are strongly correlated before.
    before = torch.corrcoef(p.T)
    assert float((before - torch.eye(12, dtype=torch.double)).abs().max()) > 0.5
    layer.fit(x)
    assert layer.out_channels == 24 and tuple(layer.weight.shape) == (24, 3, 2, 2)
    with torch.no_grad():
        out = layer(x)  # the convolution itself, bias included
    assert out.shape == (64, 24, 31, 31)
    o = out.permute(0, 2, 3, 1).reshape(-1, 24).double()
    first = o[:, :12]
    assert float(first.mean(0).abs().max()) < 1e-4                      # centred
    cov = torch.cov(first.T)
    assert float((cov - torch.eye(12, dtype=torch.double)).abs().max()) < 2e-3  # covariance ~ identity
    assert torch.allclose(o[:, 12:], -first, atol=1e-5)                 # and the negated copies
    # The row layout of patches() is the filters' layout: patches @ W^T + b equals the conv.
    lin = p @ layer.weight.flatten(1).double().T + layer.bias.double()
    assert torch.allclose(lin, o, atol=1e-4)
    # eps caps the gain of small-variance directions: covariance diag(l / (l + eps)).
    big = M.PatchWhitening(3, 2, eps=1.0).fit(x)
    with torch.no_grad():
        ob = big(x).permute(0, 2, 3, 1).reshape(-1, 24)[:, :12].double()
    evals = torch.linalg.eigvalsh(torch.cov(p.T)).flip(0)
    assert torch.allclose(torch.cov(ob.T).diag(), evals / (evals + 1.0), rtol=1e-3, atol=1e-4)


def test_patch_whitening_is_frozen_and_resettable():
    layer = M.PatchWhitening()
    assert [n for n, _ in layer.named_parameters()] == ["bias"]          # filters: a buffer, never trained
    assert set(layer.state_dict()) == {"weight", "bias"}
    x = M.Normalize(M.CIFAR10_MEAN, M.CIFAR10_STD)(_natural_images(8))
    fitted = layer.fit(x).weight.clone()
    layer.reset_parameters()                                              # random again (randomisation checks)
    assert not torch.allclose(layer.weight, fitted) and float(layer.bias.detach().abs().max()) == 0
    with pytest.raises(ValueError, match="eps"):
        M.PatchWhitening(eps=0)
    with pytest.raises(ValueError, match=r"\(N, 3, H, W\)"):
        layer.fit(torch.rand(2, 1, 8, 8))


def test_airnet_layout_dirac_init_and_frozen_bn_scale():
    torch.manual_seed(0)
    net = M.AirNet(width=8)
    assert isinstance(_first_layer(net), M.Normalize) and isinstance(net.whiten, M.PatchWhitening)
    assert net.widths == (8, 32, 32) and net.fc.in_features == 32 and net.fc.bias is None
    assert M.AirNet(width=16, width_factor=6).widths == (16, 96, 96)
    convs = [m for m in net.groups.modules() if isinstance(m, nn.Conv2d)]
    assert len(convs) == 6
    for conv in convs:
        k = min(conv.in_channels, conv.out_channels)
        ident = torch.zeros_like(conv.weight[:k])
        nn.init.dirac_(ident)
        assert torch.equal(conv.weight[:k], ident)                        # dirac init: identity on the first k
        if conv.out_channels > k:                                         # the rest: torch's random init
            assert float(conv.weight[k:].detach().abs().sum()) > 0
    # A dirac conv passes its input through: conv2 of each group starts as the identity.
    g = net.groups[0]
    z = torch.randn(2, 8, 5, 5)
    assert torch.allclose(g.conv2(z), z, atol=1e-6)
    bns = [m for m in net.modules() if isinstance(m, nn.BatchNorm2d)]
    assert bns and all(not b.weight.requires_grad and b.bias.requires_grad for b in bns)
    # reset_parameters gives a random conv (a randomisation check really randomises).
    g.conv2.reset_parameters()
    assert not torch.allclose(g.conv2(z), z, atol=1e-3)
    plain = M.AirNet(width=8, dirac=False, act="relu")
    assert isinstance(plain.groups[0].act, nn.ReLU)
    with pytest.raises(ValueError, match="act"):
        M.AirNet(act="tanh")
    with pytest.raises(ValueError, match="width_factor"):
        M.AirNet(width_factor=0)


def test_airnet_forward_gradients_width_and_build_model():
    torch.manual_seed(0)
    net = M.build_model("cifar10", arch="airnet", width=8)
    assert isinstance(net, M.AirNet)
    x = _natural_images(6).requires_grad_(True)
    net.fit_whitening(x.detach())
    out = net(x)
    assert out.shape == (6, 10)
    out[:, 0].sum().backward()
    assert x.grad is not None and float(x.grad.abs().sum()) > 0
    n8 = sum(p.numel() for p in net.parameters())
    n16 = sum(p.numel() for p in M.AirNet(width=16).parameters())
    assert 3.5 < n16 / n8 < 4.1
    cl = net.eval().to(memory_format=torch.channels_last)
    assert cl(torch.rand(2, 3, 32, 32).contiguous(memory_format=torch.channels_last)).shape == (2, 10)
    assert M.build_model("mnist", arch="airnet", width=4)(torch.rand(2, 1, 28, 28)).shape == (2, 10)
    assert "airnet" in M.ARCHS["cifar10"]


def test_mirror_average_is_the_mean_of_the_two_logits():
    torch.manual_seed(0)
    net = M.AirNet(width=4).eval()
    tta = M.MirrorAverage(net).eval()
    x = torch.rand(5, 3, 32, 32)
    assert torch.allclose(tta(x), 0.5 * (net(x) + net(x.flip(-1))), atol=1e-6)
    # The averaged model is mirror-symmetric, and differentiable like any model.
    assert torch.allclose(tta(x), tta(x.flip(-1)), atol=1e-5)
    xg = x.clone().requires_grad_(True)
    tta(xg)[:, 1].sum().backward()
    assert float(xg.grad.abs().sum()) > 0
    assert set(tta.state_dict()) == {f"net.{k}" for k in net.state_dict()}
    with pytest.raises(TypeError, match="nn.Module"):
        M.MirrorAverage(lambda z: z)


# ----------------------------------------------------------------------------- devices, prediction, evaluation

def test_resolve_device():
    assert M.resolve_device("auto").type == ("cuda" if torch.cuda.is_available() else "cpu")
    assert M.resolve_device("cpu") == torch.device("cpu")
    with pytest.raises(ValueError, match="device must be"):
        M.resolve_device("gpu0")
    if not torch.cuda.is_available():
        with pytest.raises(ValueError, match="CUDA"):
            M.resolve_device("cuda")


def _linear_model():
    # Logits = mean pixel of channel 0 and minus it: class 0 iff mean > 0 (so > 0.5 after the shift).
    lin = nn.Linear(4, 2, bias=True)
    with torch.no_grad():
        lin.weight.copy_(torch.tensor([[1.0, 1, 1, 1], [-1, -1, -1, -1]]))
        lin.bias.copy_(torch.tensor([-2.0, 2.0]))
    return nn.Sequential(nn.Flatten(), nn.Dropout(0.9), lin)


class _NaNModel(nn.Module):
    def __init__(self, n_classes=4):
        super().__init__()
        self.n_classes = n_classes
        self.w = nn.Parameter(torch.zeros(1))

    def forward(self, x):
        return torch.full((x.shape[0], self.n_classes), float("nan")) + self.w


def test_nan_logits_are_refused_naming_the_model():
    x, y = torch.rand(8, 1, 2, 2), torch.zeros(8, dtype=torch.long)
    with pytest.raises(ValueError, match=r"model \(_NaNModel\) returned non-finite scores"):
        M.predict_logits(_NaNModel(), x)
    with pytest.raises(ValueError, match=r"_NaNModel.*non-finite"):
        M.evaluate(_NaNModel(), x, y)                    # not an accuracy of 0.25 from argmax(NaN) == 0
    with pytest.raises(ValueError, match=r"shape \(N, n_classes\)"):
        M.predict_logits(lambda z: z.sum((1, 2, 3)), x)


def test_evaluate_refuses_pixels_outside_the_unit_range():
    model = _linear_model()
    x = torch.rand(6, 1, 2, 2)
    y = torch.zeros(6, dtype=torch.long)
    with pytest.raises(ValueError, match=r"x must hold pixel values in \[0, 1\]"):
        M.evaluate(model, x * 255, y)                    # 0..255 pixels, a common slip
    with pytest.raises(ValueError, match=r"x must hold pixel values in \[0, 1\]"):
        M.evaluate(model, x - 0.5, y)


@pytest.mark.parametrize("bad", [2, -1, 10])
def test_evaluate_refuses_labels_out_of_range(bad):
    model = _linear_model()                               # 2 classes
    y = torch.zeros(6, dtype=torch.long)
    y[3] = bad
    with pytest.raises(ValueError, match=r"y must hold class indices in \[0, 1\]"):
        M.evaluate(model, torch.rand(6, 1, 2, 2), y)


def test_evaluate_refuses_labels_that_are_not_class_indices():
    with pytest.raises(TypeError, match="y must hold integer class indices"):
        M.evaluate(_linear_model(), torch.rand(6, 1, 2, 2), torch.zeros(6))


def test_empty_batch_is_refused_before_running_the_model():
    def never(z):
        pytest.fail("the model must not run on an empty batch")
    x, y = torch.rand(0, 1, 2, 2), torch.zeros(0, dtype=torch.long)
    with pytest.raises(ValueError, match=r"x holds no images \(N = 0"):
        M.predict_logits(never, x)
    with pytest.raises(ValueError, match=r"x holds no images \(N = 0"):
        M.evaluate(never, x, y)


def test_evaluate_and_predict_logits_batched():
    model = _linear_model().train()
    x = torch.rand(37, 1, 2, 2)
    y = (x.sum((1, 2, 3)) <= 2).long()
    logits = M.predict_logits(model, x, batch_size=5)
    assert logits.shape == (37, 2) and logits.dtype == torch.float32
    ref = torch.stack([x.flatten(1).sum(1) - 2, 2 - x.flatten(1).sum(1)], 1)
    assert torch.allclose(logits, ref, atol=1e-6)  # dropout off: eval mode inside
    assert model.training  # ... and the mode is restored
    assert M.evaluate(model, x, y, batch_size=4) == 1.0
    assert abs(M.evaluate(model, x, 1 - y) - 0.0) < 1e-9
    half = y.clone()
    half[:10] = 1 - half[:10]
    assert abs(M.evaluate(model, x, half, batch_size=37) - 27 / 37) < 1e-6
    with pytest.raises(ValueError, match="one label per image"):
        M.evaluate(model, x, y[:-1])
    with pytest.raises(ValueError, match="4 dimensions"):
        M.predict_logits(model, x[0])


# ----------------------------------------------------------------------------- pretrained ImageNet classifiers

@pytest.fixture
def empty_hub(tmp_path, monkeypatch):
    old = torch.hub.get_dir()
    torch.hub.set_dir(str(tmp_path / "hub"))
    yield tmp_path
    torch.hub.set_dir(old)


def test_classifier_offline_without_weights_raises(empty_hub, monkeypatch):
    monkeypatch.setenv("FREQKIT_OFFLINE", "1")
    monkeypatch.setattr(torch.hub, "download_url_to_file", lambda *a, **k: pytest.fail("must not download"))
    with pytest.raises(M.WeightsUnavailable, match="weights_path") as e:
        M.load_imagenet_classifier("resnet18")
    assert isinstance(e.value, RuntimeError) and "could not download" not in str(e.value)
    with pytest.raises(M.WeightsUnavailable) as e:
        M.load_imagenet_classifier("resnet18", download=False)
    assert "could not download" not in str(e.value) and "resnet18-f37072fd.pth" in str(e.value)


def test_classifier_failed_download_raises(empty_hub, monkeypatch):
    def no_network(url, dst, hash_prefix=None, progress=True):
        raise OSError("Name or service not known")
    monkeypatch.setattr(torch.hub, "download_url_to_file", no_network)
    with pytest.raises(M.WeightsUnavailable, match="could not download .*Name or service not known"):
        M.load_imagenet_classifier("resnet18", download=True)
    assert not list((empty_hub / "hub").rglob("*.pth"))


class _RunsCode:
    """Unpickling this runs a shell command (the classic planted-pickle payload)."""

    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        import os
        return os.system, (f"touch {self.marker}",)


def _plant(empty_hub, obj, name="resnet18-f37072fd.pth"):
    folder = empty_hub / "hub" / "checkpoints"
    folder.mkdir(parents=True, exist_ok=True)
    torch.save(obj, folder / name)
    return folder / name


@pytest.mark.parametrize("download", [False, True])
def test_planted_hub_cache_file_runs_no_code(empty_hub, monkeypatch, download):
    """A pickle planted where torchvision caches resnet18's weights: its payload never runs,
    and the error names the file (it is not a download failure)."""
    marker = empty_hub / "pwned"
    path = _plant(empty_hub, {"fc.weight": _RunsCode(marker)})
    monkeypatch.setattr(torch.hub, "download_url_to_file", lambda *a, **k: pytest.fail("the file is cached"))
    with pytest.raises(ValueError) as e:
        M.load_imagenet_classifier("resnet18", download=download)
    msg = str(e.value)
    assert str(path) in msg and "SHA-256" in msg and "f37072fd" in msg and "could not download" not in msg
    assert not isinstance(e.value, M.WeightsUnavailable)
    assert not marker.exists()


def test_planted_hub_file_with_a_matching_hash_is_still_loaded_weights_only(empty_hub, monkeypatch):
    """Even if a planted file passed the hash check, ``weights_only`` loading runs no code."""
    import hashlib

    marker = empty_hub / "pwned"
    path = _plant(empty_hub, {"fc.weight": _RunsCode(marker)})
    digest = hashlib.sha256(path.read_bytes()).hexdigest()
    monkeypatch.setattr(M, "_hub_hash_prefix", lambda name: digest[:8])
    with pytest.raises(ValueError, match="could not read") as e:
        M.load_imagenet_classifier("resnet18", download=False)
    assert str(path) in str(e.value) and "delete" in str(e.value).lower()
    assert not marker.exists()


def test_classifier_from_a_verified_hub_cache_file(empty_hub, monkeypatch):
    import hashlib

    import torchvision

    torch.manual_seed(0)
    ref = torchvision.models.resnet18(weights=None).eval()
    path = _plant(empty_hub, ref.state_dict())
    digest = hashlib.sha256(path.read_bytes()).hexdigest()
    monkeypatch.setattr(M, "_hub_hash_prefix", lambda name: digest[:8])
    model = M.load_imagenet_classifier("resnet18", download=False)
    assert model.weights_source == str(path) and torch.equal(model.net.fc.weight, ref.fc.weight)
    # One flipped byte and the same file is refused, naming it.
    blob = bytearray(path.read_bytes())
    blob[len(blob) // 2] ^= 0xFF
    path.write_bytes(bytes(blob))
    with pytest.raises(ValueError, match="SHA-256") as e:
        M.load_imagenet_classifier("resnet18", download=False)
    assert str(path) in str(e.value)


def test_hub_hash_prefix_follows_torchvision_names():
    assert M._hub_hash_prefix("resnet18-f37072fd.pth") == "f37072fd"
    assert M._hub_hash_prefix("efficientnet_b0_rwightman-7f5810bc.pth") == "7f5810bc"
    assert M._hub_hash_prefix("weights.pth") is None


def test_classifier_from_local_weights_file(tmp_path):
    import torchvision
    from freqkit.models import IMAGENET_MEAN, IMAGENET_STD, Normalize

    torch.manual_seed(0)
    ref = torchvision.models.resnet18(weights=None).eval()
    path = tmp_path / "resnet18-random.pth"
    torch.save(ref.state_dict(), path)
    model = M.load_imagenet_classifier("resnet18", weights_path=path)
    assert isinstance(model[0], Normalize) and not model.training
    assert torch.allclose(model[0].mean.flatten(), torch.tensor(IMAGENET_MEAN))
    assert torch.allclose(model[0].std.flatten(), torch.tensor(IMAGENET_STD))
    assert torch.equal(model.net.fc.weight, ref.fc.weight)
    assert len(model.categories) == 1000 and model.weights_source == str(path)
    x = torch.rand(2, 3, 64, 64)
    with torch.no_grad():
        expected = ref((x - torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1)) / torch.tensor(IMAGENET_STD).view(1, 3, 1, 1))
        assert torch.allclose(model(x), expected, atol=1e-5)
    # A file saved from the wrapped model itself loads too (its Normalize buffers are skipped).
    torch.save(model.state_dict(), tmp_path / "wrapped.pth")
    again = M.load_imagenet_classifier("resnet18", weights_path=tmp_path / "wrapped.pth")
    assert torch.equal(again.net.conv1.weight, ref.conv1.weight)


def test_classifier_bad_inputs(tmp_path):
    with pytest.raises(ValueError, match="arch must be"):
        M.load_imagenet_classifier("resnet_nonexistent", weights_path=tmp_path / "x.pth")
    with pytest.raises(FileNotFoundError, match="does not exist"):
        M.load_imagenet_classifier("resnet18", weights_path=tmp_path / "x.pth")
    torch.save({"fc.weight": torch.zeros(3, 3)}, tmp_path / "wrong.pth")
    with pytest.raises(ValueError, match="does not fit"):
        M.load_imagenet_classifier("resnet18", weights_path=tmp_path / "wrong.pth")
    (tmp_path / "junk.pth").write_bytes(b"not a torch file")
    with pytest.raises(ValueError, match="could not read"):
        M.load_imagenet_classifier("resnet18", weights_path=tmp_path / "junk.pth")


# ----------------------------------------------------------------------------- RobustBench's model zoo

# Not `pytest.importorskip("robustbench")`: a plain `import robustbench` fails even when it is
# installed (its __init__ needs the module autoattack), which importorskip would take for absent.
needs_robustbench = pytest.mark.skipif(importlib.util.find_spec("robustbench") is None,
                                       reason="robustbench not installed (pip install 'freqkit[robustbench]')")


@pytest.mark.parametrize("kw, match", [
    ({"name": ""}, "name must be"),
    ({"name": 3}, "name must be"),
    ({"name": "Wong2020Fast", "dataset": "mnist"}, r"dataset must be one of \['cifar10', 'cifar100', 'imagenet'\]"),
    ({"name": "Wong2020Fast", "threat_model": "linf"}, r"threat_model must be one of .*'Linf'"),
])
def test_robustbench_bad_arguments_are_named_before_importing_robustbench(kw, match):
    with pytest.raises(ValueError, match=match):
        M.load_robustbench(**kw)


def test_robustbench_missing_package_names_the_extra(monkeypatch):
    for k in [k for k in sys.modules if k == "robustbench" or k.startswith("robustbench.")]:
        monkeypatch.delitem(sys.modules, k)
    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda n, *a: None if n == "robustbench" else real(n, *a))
    with pytest.raises(ImportError, match=r"pip install 'freqkit\[robustbench\]'"):
        M.load_robustbench("Wong2020Fast", weights_path="unused.pt")


class _Zoo(nn.Module):
    """A stand-in with a zoo model's shape of state_dict: normalisation buffers and layers."""

    def __init__(self):
        super().__init__()
        self.register_buffer("mu", torch.full((1, 2, 1, 1), 0.5))
        self.register_buffer("sigma", torch.full((1, 2, 1, 1), 0.25))
        self.conv = nn.Conv2d(2, 3, 1)
        self.bn = nn.BatchNorm2d(3)


def test_robustbench_checkpoint_forms_follow_robustbench_loader_strictly():
    torch.manual_seed(0)
    net = _Zoo()
    sd = net.state_dict()
    module = OrderedDict(("module." + k, v) for k, v in sd.items())
    forms = [sd, module, {"state_dict": module, "epoch": 3}, {"model_state_dict": sd},
             {"last": {"state_dict": module}, "best": {}}, OrderedDict(("model." + k, v) for k, v in sd.items())]
    for form in forms:
        out = M._robustbench_state_dict(form, _Zoo(), "f.pt")
        assert out.keys() == sd.keys() and all(torch.equal(out[k], sd[k]) for k in sd)
    # An ImageNet-style model is Sequential(normalize, model): "model." is added to a bare checkpoint.
    wrapped = nn.Sequential(OrderedDict(model=_Zoo()))
    assert set(M._robustbench_state_dict(module, wrapped, "f.pt")) == set(wrapped.state_dict())
    # Tolerated as robustbench tolerates them: missing normalisation buffers, pruning scores.
    lenient = {k: v for k, v in sd.items() if k not in ("mu", "sigma")} | {"conv.scores": torch.ones(3)}
    assert "mu" not in M._robustbench_state_dict(lenient, _Zoo(), "f.pt")
    with pytest.raises(ValueError, match=r"does not fit .*missing keys \['conv.weight'\]"):
        M._robustbench_state_dict({k: v for k, v in sd.items() if k != "conv.weight"}, _Zoo(), "f.pt")
    with pytest.raises(ValueError, match=r"unexpected keys \['head.weight'\]"):
        M._robustbench_state_dict(sd | {"head.weight": torch.ones(1)}, _Zoo(), "f.pt")
    with pytest.raises(ValueError, match="holds no state_dict"):
        M._robustbench_state_dict({"epoch": 3, "acc": 0.5}, _Zoo(), "f.pt")


def _zoo_model(name, dataset="cifar10", threat_model="Linf"):
    enums = M._robustbench_module("model_zoo.enums")
    zoo = M._robustbench_module("model_zoo.models").model_dicts
    return zoo[enums.BenchmarkDataset(dataset)][enums.ThreatModel(threat_model)][name]["model"]()


@needs_robustbench
def test_robustbench_loads_a_local_state_dict(tmp_path, one_thread):
    torch.manual_seed(0)
    ref = _zoo_model("Wong2020Fast").eval()  # PreActResNet-18
    assert "robustbench" not in sys.modules or hasattr(sys.modules["robustbench"], "load_model")  # no stand-in left
    with torch.no_grad():
        for p in ref.parameters():
            p.add_(0.01 * torch.randn_like(p))
    torch.save(ref.state_dict(), tmp_path / "plain.pt")
    # as RobustBench stores many: DataParallel's "module." prefix, under 'state_dict'
    torch.save({"state_dict": OrderedDict(("module." + k, v) for k, v in ref.state_dict().items())},
               tmp_path / "module.pt")
    x = torch.rand(2, 3, 32, 32)
    with torch.no_grad():
        want_logits = ref(x)
    for file in ("plain.pt", "module.pt"):
        rng = torch.get_rng_state()
        model = M.load_robustbench("Wong2020Fast", weights_path=tmp_path / file, download=False)
        assert torch.equal(torch.get_rng_state(), rng)  # building the architecture left the seed alone
        assert not model.training and type(model) is type(ref)
        assert (model.arch, model.dataset, model.threat_model) == ("Wong2020Fast", "cifar10", "Linf")
        assert model.weights_source == str(tmp_path / file)
        got, want = model.state_dict(), ref.state_dict()
        assert got.keys() == want.keys() and all(torch.equal(got[k], want[k]) for k in want)
        with torch.no_grad():
            assert torch.equal(model(x), want_logits)
    # [0, 1] inputs: the model normalises inside with CIFAR-10's statistics
    assert torch.allclose(model.mu.flatten(), torch.tensor(M.CIFAR10_MEAN), atol=1e-3)


@needs_robustbench
def test_robustbench_offline_without_weights_raises(empty_hub, monkeypatch):
    rb_utils = M._robustbench_module("utils")
    monkeypatch.setattr(rb_utils, M._robustbench_downloader(), lambda *a, **k: pytest.fail("must not download"))
    monkeypatch.setenv("FREQKIT_OFFLINE", "1")
    with pytest.raises(M.WeightsUnavailable, match="weights_path") as e:
        M.load_robustbench("Wong2020Fast")
    assert isinstance(e.value, RuntimeError) and "could not download" not in str(e.value)
    assert "robustbench/cifar10/Linf/Wong2020Fast.pt" in str(e.value)
    monkeypatch.delenv("FREQKIT_OFFLINE")
    with pytest.raises(M.WeightsUnavailable, match="download=False"):
        M.load_robustbench("Wong2020Fast", download=False)


@needs_robustbench
def test_robustbench_download_goes_through_robustbench_into_the_cache(empty_hub, monkeypatch, one_thread):
    rb_utils = M._robustbench_module("utils")
    torch.manual_seed(1)
    ref = _zoo_model("Hendrycks2020AugMix_WRN", threat_model="corruptions").eval()  # WRN-40-2, 2.2 M parameters
    calls = []

    def fake_gdown(gdrive_id, fname_save):
        calls.append(gdrive_id)
        torch.save({"state_dict": OrderedDict(("module." + k, v) for k, v in ref.state_dict().items())}, fname_save)
    monkeypatch.setattr(rb_utils, M._robustbench_downloader(), fake_gdown)
    model = M.load_robustbench("Hendrycks2020AugMix_WRN", threat_model="corruptions")
    cached = empty_hub / "hub" / "robustbench" / "cifar10" / "corruptions" / "Hendrycks2020AugMix_WRN.pt"
    assert len(calls) == 1 and model.weights_source == str(cached)
    assert torch.equal(model.fc.weight, ref.fc.weight)
    monkeypatch.setenv("FREQKIT_OFFLINE", "1")  # now cached: read without downloading
    again = M.load_robustbench("Hendrycks2020AugMix_WRN", threat_model="corruptions", download=False)
    assert len(calls) == 1 and torch.equal(again.fc.weight, ref.fc.weight)


@needs_robustbench
def test_robustbench_failed_download_raises_and_leaves_nothing(empty_hub, monkeypatch):
    def no_network(gdrive_id, fname_save):
        Path(fname_save).write_bytes(b"partial")  # as robustbench 1.1.1's requests helper leaves it
        Path(str(fname_save) + "a1b2c3d4tmp").write_bytes(b"partial")  # as gdown leaves it
        raise OSError("Name or service not known")
    monkeypatch.setattr(M._robustbench_module("utils"), M._robustbench_downloader(), no_network)
    with pytest.raises(M.WeightsUnavailable, match="could not download .*Name or service not known"):
        M.load_robustbench("Wong2020Fast")
    assert not [p for p in (empty_hub / "hub").rglob("*") if p.is_file()]


@needs_robustbench
def test_robustbench_bad_names_and_files(tmp_path):
    with pytest.raises(ValueError, match=r"name 'Wong2020Fsat' is not in .*did you mean \['Wong2020Fast'"):
        M.load_robustbench("Wong2020Fsat", weights_path=tmp_path / "x.pt")
    with pytest.raises(ValueError, match="name 'Chen2020Adversarial' .*not supported.*ensemble"):
        M.load_robustbench("Chen2020Adversarial")
    with pytest.raises(ValueError, match="threat_model 'L2' has no models for dataset 'cifar100'"):
        M.load_robustbench("Standard", dataset="cifar100", threat_model="L2")
    with pytest.raises(FileNotFoundError, match="does not exist"):
        M.load_robustbench("Hendrycks2020AugMix_WRN", threat_model="corruptions", weights_path=tmp_path / "x.pt")
    torch.save({"fc.weight": torch.zeros(10, 128)}, tmp_path / "wrong.pt")
    with pytest.raises(ValueError, match="does not fit"):
        M.load_robustbench("Hendrycks2020AugMix_WRN", threat_model="corruptions", weights_path=tmp_path / "wrong.pt")
    (tmp_path / "junk.pt").write_bytes(b"not a torch file")
    with pytest.raises(ValueError, match="could not read"):
        M.load_robustbench("Hendrycks2020AugMix_WRN", threat_model="corruptions", weights_path=tmp_path / "junk.pt")


@needs_robustbench
def test_robustbench_choices_are_robustbench_own_and_its_init_is_not_run():
    enums = M._robustbench_module("model_zoo.enums")
    zoo = M._robustbench_module("model_zoo.models").model_dicts
    assert set(M._RB_DATASETS) == {d.value for d in zoo} <= {d.value for d in enums.BenchmarkDataset}
    assert set(M._RB_THREAT_MODELS) == {t.value for t in enums.ThreatModel}
    # the bare parent used for the import is gone again: `import robustbench` behaves as without freqkit
    assert "robustbench" not in sys.modules or hasattr(sys.modules["robustbench"], "load_model")
    assert enums.__name__ == "robustbench.model_zoo.enums"
