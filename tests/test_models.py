"""freqkit.models: the Normalize layer, SmallCNN, ResNetCIFAR and build_model."""
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
