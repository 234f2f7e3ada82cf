"""The public contract of DESIGN.md, run in a venv that holds only freqkit's core dependencies.

Run by .ci/wheel_check.sh from the built wheel (never the repository's sources): every name
of the contract exists and behaves, and none of the book's or the attacks' extras is needed.
"""
import sys

import torch
from torch import nn

import freqkit as fk

assert "freqkit/book" not in fk.__file__ and ".venv-core" in fk.__file__, f"not the installed wheel: {fk.__file__}"
torch.manual_seed(0)
x = torch.rand(4, 3, 16, 16)
y = torch.randint(0, 10, (4,))
model = nn.Sequential(fk.Normalize((0.5, 0.5, 0.5), (0.25, 0.25, 0.25)), nn.Conv2d(3, 8, 3, padding=1), nn.ReLU(),
                      nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(8, 10)).eval()

c = fk.dct2(x)
assert torch.allclose(fk.idct2(c), x, atol=1e-5)
m = fk.band_masks(16, 16, 4, kind="radial")
assert m.shape == (4, 16, 16) and bool((m.sum(0) == 1).all())
fm = fk.FrequencyModel(model, basis="dct")
assert torch.allclose(fm(c), model(x), atol=1e-5)
a = fk.attribute(model, x, "predicted", method="ig", basis="dct", n_steps=32)
assert a.scores.shape == x.shape and a.bands(m).shape == (4, 4)
assert float(a.delta.abs().max()) < 1e-3 * max(1.0, float(a.output_x.abs().max()))
x_adv = fk.pgd(model, x, y, 0.5, norm="l2", steps=5, band=m[0])
assert float((x_adv - x).flatten(1).norm(dim=1).max()) <= 0.5 + 1e-5 and 0 <= float(x_adv.min()) <= float(x_adv.max()) <= 1
hm = fk.fourier_heatmap(model, x, y, eps=1.0, progress=False)
assert hm.shape == (16, 16)
assert fk.hypotheses.decide((0.02, 0.05), 0.01) == "supported"
for heavy in ("papermill", "jupyter_book", "ipywidgets", "nbformat", "yaml", "pyautoattack", "torchattacks"):  # (matplotlib comes with captum)
    assert heavy not in sys.modules, f"the core library imported {heavy}"
print(f"freqkit {fk.__version__}: the public contract runs with the core dependencies only "
      f"(torch {torch.__version__}); {len(fk.__all__)} public names")
